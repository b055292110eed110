"""The school domain: students, courses with capacity, enrollments and grades."""

from __future__ import annotations

import random

from podium.tools.envspec import DomainSpec, ToolSpec

from .kit import Rows, col, get_tool, ids, key_param, param, people, search_tool, step
from .kit import table as tbl


def school(seed: int) -> tuple[DomainSpec, Rows]:
    """Students, courses with capacity, enrollments and grades."""
    rng = random.Random(f"school-{seed}")
    students = tbl(
        "students",
        "student",
        "student_id",
        [
            col("student_id"),
            col("name", phrase="named {}"),
            col("grade_level", "integer", phrase="in grade {}"),
            col("advisor"),
        ],
    )
    courses = tbl(
        "courses",
        "course",
        "course_id",
        [
            col("course_id"),
            col("title", phrase="titled {}"),
            col("teacher", phrase="taught by {}"),
            col("capacity", "integer"),
            col("enrolled", "integer"),
            col("credits", "integer"),
        ],
    )
    enroll = tbl(
        "enrollments",
        "enrollment",
        "enrollment_id",
        [
            col("enrollment_id"),
            col("student_id", ref="students.student_id", phrase="of student {}"),
            col("course_id", ref="courses.course_id", phrase="in course {}"),
            col("status", choices=["enrolled", "dropped"]),
            col("grade"),
        ],
    )
    tools = [
        get_tool(
            students,
            "N0001",
            intent="tell me the grade level and advisor of {student_id}",
            reports=("record.grade_level", "record.advisor"),
        ),
        get_tool(
            courses,
            "CR0001",
            intent="tell me how many seats are free in {course_id}",
            reports=("record.capacity - record.enrolled",),
        ),
        get_tool(
            enroll,
            "E0001",
            intent="tell me the grade of {enrollment_id}",
            reports=("record.grade",),
        ),
        search_tool(
            "search_students",
            students,
            [
                ("name", "like", "name", "Student's name."),
                ("grade_level", "=", "grade_level", "Grade 9-12."),
            ],
            "Find students.",
        ),
        search_tool(
            "search_courses",
            courses,
            [
                ("title", "like", "title", "Part of the title."),
                ("teacher", "like", "teacher", "Teacher's name."),
            ],
            "Find courses.",
        ),
        search_tool(
            "search_enrollments",
            enroll,
            [
                ("student_id", "=", "student_id", "Student id, like 'N0001'."),
                ("course_id", "=", "course_id", "Course id, like 'CR0001'."),
                ("status", "=", "status", "enrolled or dropped."),
            ],
            "Find enrollments.",
        ),
        ToolSpec(
            name="enroll_student",
            description="Enroll a student in a course that has a free "
            "seat; a student cannot be enrolled twice in one course.",
            params=[
                key_param("student_id", "student", "N0001", "students"),
                key_param("course_id", "course", "CR0001", "courses", "r.enrolled < r.capacity"),
            ],
            steps=[
                step("get", table="students", key="student_id", name="student"),
                step("get", table="courses", key="course_id", name="course"),
                step("let", name="enrolled", expr="'enrolled'"),
                step(
                    "search",
                    table="enrollments",
                    name="results",
                    where=[
                        ("student_id", "=", "student_id"),
                        ("course_id", "=", "course_id"),
                        ("status", "=", "enrolled"),
                    ],
                ),
                step(
                    "check",
                    expr="len(results) == 0",
                    error="{student.name} is already enrolled in {course.title}",
                ),
                step(
                    "check",
                    expr="course.enrolled < course.capacity",
                    error="{course.title} is full ({course.capacity} students)",
                ),
                step(
                    "update",
                    table="courses",
                    key="course_id",
                    set={"enrolled": "course.enrolled + 1"},
                ),
                step(
                    "insert",
                    table="enrollments",
                    name="new",
                    set={
                        "enrollment_id": "new_id('enrollments', 'E')",
                        "student_id": "student_id",
                        "course_id": "course_id",
                        "status": "'enrolled'",
                        "grade": "''",
                    },
                ),
            ],
            returns="Enrolled {student.name} in {course.title} ({new.enrollment_id}).",
            intent="enroll {student_id} in {course_id}",
        ),
        ToolSpec(
            name="drop_course",
            description="Drop an enrollment; frees the seat.",
            params=[
                key_param(
                    "enrollment_id", "enrollment", "E0001", "enrollments", "r.status == 'enrolled'"
                )
            ],
            steps=[
                step("get", table="enrollments", key="enrollment_id", name="entry"),
                step(
                    "check",
                    expr="entry.status == 'enrolled'",
                    error="enrollment {enrollment_id} is already dropped",
                ),
                step("get", table="courses", key="entry.course_id", name="course"),
                step(
                    "update", table="enrollments", key="enrollment_id", set={"status": "'dropped'"}
                ),
                step(
                    "update",
                    table="courses",
                    key="entry.course_id",
                    set={"enrolled": "course.enrolled - 1"},
                ),
            ],
            returns="Enrollment {enrollment_id} is dropped from {course.title}.",
            intent="drop {enrollment_id}",
        ),
        ToolSpec(
            name="record_grade",
            description="Record a letter grade (A, B, C, D or F) for an active enrollment.",
            params=[
                key_param(
                    "enrollment_id", "enrollment", "E0001", "enrollments", "r.status == 'enrolled'"
                ),
                param("grade", "A, B, C, D or F.", sample="choice:A|B|C|D|F"),
            ],
            steps=[
                step("get", table="enrollments", key="enrollment_id", name="entry"),
                step(
                    "check",
                    expr="upper(grade) in ['A', 'B', 'C', 'D', 'F']",
                    error="grade must be A, B, C, D or F",
                ),
                step(
                    "check",
                    expr="entry.status == 'enrolled'",
                    error="enrollment {enrollment_id} was dropped",
                ),
                step(
                    "check",
                    expr="entry.grade != upper(grade)",
                    error="the grade is already {upper(grade)}",
                ),
                step(
                    "update",
                    table="enrollments",
                    key="enrollment_id",
                    set={"grade": "upper(grade)"},
                ),
            ],
            returns="Grade {upper(grade)} recorded for {enrollment_id}.",
            intent="record grade {grade} for {enrollment_id}",
        ),
    ]
    titles = [
        "Algebra II",
        "World History",
        "Chemistry",
        "Biology",
        "Spanish I",
        "Art Studio",
        "Physics",
        "Literature",
        "Statistics",
        "Music Theory",
    ]
    teachers = people(rng, 10)
    rows: Rows = {
        "students": [
            {
                "student_id": s,
                "name": n,
                "grade_level": rng.randrange(9, 13),
                "advisor": rng.choice(teachers),
            }
            for s, n in zip(ids("N", 50), people(rng, 50), strict=False)
        ]
    }
    rows["courses"] = [
        {
            "course_id": f"CR{i:04d}",
            "title": t,
            "teacher": teachers[i - 1],
            "capacity": rng.choice([15, 20, 25]),
            "enrolled": 0,
            "credits": rng.choice([3, 4]),
        }
        for i, t in enumerate(titles, 1)
    ]
    rows["enrollments"] = []
    for s in rows["students"]:
        for c in rng.sample(rows["courses"], 2):
            status = rng.choice(["enrolled"] * 5 + ["dropped"])
            c["enrolled"] += status == "enrolled"
            rows["enrollments"].append(
                {
                    "enrollment_id": f"E{len(rows['enrollments']) + 1:04d}",
                    "student_id": s["student_id"],
                    "course_id": c["course_id"],
                    "status": status,
                    "grade": rng.choice(["", "", "A", "B", "C"]) if status == "enrolled" else "",
                }
            )
    return DomainSpec(
        name="school",
        description="A high school: students, courses, grades.",
        tables=[students, courses, enroll],
        tools=tools,
    ), rows
