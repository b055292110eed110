"""The medicine domain: patients with allergies, doctors, a drug stock and prescriptions."""

from __future__ import annotations

import random

from podium.tools.envspec import DomainSpec, ToolSpec

from .kit import Rows, col, get_tool, ids, key_param, param, people, search_tool, step
from .kit import table as tbl

DRUG_CLASSES = ["penicillin", "nsaid", "statin", "antihistamine", "sulfa"]


def medicine(seed: int) -> tuple[DomainSpec, Rows]:
    """Patients with allergies, doctors, a drug stock and prescriptions."""
    rng = random.Random(f"medicine-{seed}")
    patients = tbl(
        "patients",
        "patient",
        "patient_id",
        [
            col("patient_id"),
            col("name", phrase="named {}"),
            col("birth_year", "integer"),
            col("allergy", phrase="allergic to {}"),
        ],
    )
    doctors = tbl(
        "doctors",
        "doctor",
        "doctor_id",
        [col("doctor_id"), col("name", phrase="named {}"), col("specialty", phrase="in {}")],
    )
    drugs = tbl(
        "drugs",
        "drug",
        "drug_id",
        [
            col("drug_id"),
            col("name", phrase="called {}"),
            col("drug_class", phrase="of class {}"),
            col("stock", "integer"),
        ],
    )
    rx = tbl(
        "prescriptions",
        "prescription",
        "rx_id",
        [
            col("rx_id"),
            col("patient_id", ref="patients.patient_id", phrase="of patient {}"),
            col("drug_id", ref="drugs.drug_id", phrase="for drug {}"),
            col("doctor_id", ref="doctors.doctor_id"),
            col("dose_mg", "integer"),
            col("status", choices=["active", "stopped"]),
        ],
    )
    tools = [
        get_tool(
            patients,
            "Q0001",
            intent="tell me the recorded allergy of {patient_id}",
            reports=("record.allergy",),
        ),
        get_tool(doctors, "D0001"),
        get_tool(
            drugs,
            "X0001",
            intent="tell me how many units of {drug_id} are in stock",
            reports=("record.stock",),
        ),
        get_tool(rx, "RX0001"),
        search_tool(
            "search_patients",
            patients,
            [("name", "like", "name", "Patient's name.")],
            "Find patients by name.",
        ),
        search_tool(
            "search_drugs",
            drugs,
            [
                ("name", "like", "name", "Drug name."),
                ("drug_class", "=", "drug_class", "e.g. 'statin'."),
            ],
            "Find drugs by name or class.",
        ),
        search_tool(
            "search_prescriptions",
            rx,
            [
                ("patient_id", "=", "patient_id", "Patient id, like 'Q0001'."),
                ("drug_id", "=", "drug_id", "Drug id, like 'X0001'."),
                ("status", "=", "status", "active or stopped."),
            ],
            "Find prescriptions by patient, drug or status.",
        ),
        ToolSpec(
            name="prescribe",
            description="Prescribe a drug to a patient. Refused when the "
            "patient is allergic to the drug's class, when the drug is out of stock, or when the "
            "patient already has an active prescription for it; uses one unit of stock.",
            params=[
                key_param("patient_id", "patient", "Q0001", "patients"),
                key_param("drug_id", "drug", "X0001", "drugs", "r.stock > 0"),
                key_param("doctor_id", "prescribing doctor", "D0001", "doctors"),
                param(
                    "dose_mg",
                    "Dose in mg (5-1000).",
                    "integer",
                    sample="choice:50|100|200|250|400|500",
                    fmt="{} mg",
                ),
            ],
            steps=[
                step("get", table="patients", key="patient_id", name="patient"),
                step("get", table="drugs", key="drug_id", name="drug"),
                step("get", table="doctors", key="doctor_id", name="doctor"),
                step("let", name="active", expr="'active'"),
                step(
                    "search",
                    table="prescriptions",
                    name="results",
                    where=[
                        ("patient_id", "=", "patient_id"),
                        ("drug_id", "=", "drug_id"),
                        ("status", "=", "active"),
                    ],
                ),
                step(
                    "check",
                    expr="len(results) == 0",
                    error="{patient.name} already has an active prescription for {drug.name}",
                ),
                step(
                    "check",
                    expr="patient.allergy != drug.drug_class",
                    error="{patient.name} is allergic to {drug.drug_class}: cannot prescribe "
                    "{drug.name}",
                ),
                step("check", expr="drug.stock > 0", error="{drug.name} is out of stock"),
                step(
                    "check", expr="dose_mg >= 5 and dose_mg <= 1000", error="dose must be 5-1000 mg"
                ),
                step("update", table="drugs", key="drug_id", set={"stock": "drug.stock - 1"}),
                step(
                    "insert",
                    table="prescriptions",
                    name="new",
                    set={
                        "rx_id": "new_id('prescriptions', 'RX')",
                        "patient_id": "patient_id",
                        "drug_id": "drug_id",
                        "doctor_id": "doctor_id",
                        "dose_mg": "dose_mg",
                        "status": "'active'",
                    },
                ),
            ],
            returns="Prescribed {drug.name} {dose_mg} mg to {patient.name} ({new.rx_id}).",
            intent="prescribe {drug_id} to {patient_id} on behalf of {doctor_id}, dose {dose_mg}, "
            "and tell me the new prescription id",
            reports=["new.rx_id"],
        ),
        ToolSpec(
            name="stop_prescription",
            description="Stop an active prescription.",
            params=[
                key_param(
                    "rx_id", "prescription", "RX0001", "prescriptions", "r.status == 'active'"
                )
            ],
            steps=[
                step("get", table="prescriptions", key="rx_id", name="rx"),
                step(
                    "check",
                    expr="rx.status == 'active'",
                    error="prescription {rx_id} is already stopped",
                ),
                step("update", table="prescriptions", key="rx_id", set={"status": "'stopped'"}),
            ],
            returns="Prescription {rx_id} is stopped.",
            intent="stop {rx_id}",
        ),
        ToolSpec(
            name="record_allergy",
            description="Record a patient's allergy to a drug class "
            f"({', '.join(DRUG_CLASSES)}) or 'none'.",
            params=[
                key_param("patient_id", "patient", "Q0001", "patients"),
                param(
                    "allergy", "Drug class or 'none'.", sample="choice:" + "|".join(DRUG_CLASSES)
                ),
            ],
            steps=[
                step("get", table="patients", key="patient_id", name="patient"),
                step(
                    "check",
                    expr=f"allergy in {[*DRUG_CLASSES, 'none']}",
                    error="unknown drug class {allergy}",
                ),
                step(
                    "check",
                    expr="patient.allergy != allergy",
                    error="{patient.name} already has allergy {allergy} on file",
                ),
                step("update", table="patients", key="patient_id", set={"allergy": "allergy"}),
            ],
            returns="Recorded allergy {allergy} for {patient.name}.",
            intent="record that {patient_id} is allergic to {allergy}",
        ),
    ]
    drug_names = {
        "penicillin": ["Amoxicillin", "Penicillin V"],
        "nsaid": ["Ibuprofen", "Naproxen"],
        "statin": ["Atorvastatin", "Simvastatin"],
        "antihistamine": ["Loratadine", "Cetirizine"],
        "sulfa": ["Sulfamethoxazole"],
    }
    rows: Rows = {
        "patients": [
            {
                "patient_id": p,
                "name": n,
                "birth_year": rng.randrange(1940, 2015),
                "allergy": rng.choice([*DRUG_CLASSES, "none", "none", "none"]),
            }
            for p, n in zip(ids("Q", 40), people(rng, 40), strict=False)
        ]
    }
    rows["doctors"] = [
        {"doctor_id": d, "name": f"Dr. {n}", "specialty": s}
        for d, n, s in zip(
            ids("D", 6),
            people(rng, 6),
            [
                "cardiology",
                "general practice",
                "dermatology",
                "pediatrics",
                "neurology",
                "general practice",
            ],
            strict=False,
        )
    ]
    rows["drugs"] = [
        {"drug_id": f"X{i:04d}", "name": n, "drug_class": c, "stock": rng.randrange(0, 40)}
        for i, (c, n) in enumerate(((c, n) for c, ns in drug_names.items() for n in ns), 1)
    ]
    rows["prescriptions"] = [
        {
            "rx_id": r,
            "patient_id": rng.choice(rows["patients"])["patient_id"],
            "drug_id": rng.choice(rows["drugs"])["drug_id"],
            "doctor_id": rng.choice(rows["doctors"])["doctor_id"],
            "dose_mg": rng.choice([10, 20, 50, 200, 400]),
            "status": rng.choice(["active", "stopped"]),
        }
        for r in (f"RX{i:04d}" for i in range(1, 41))
    ]
    return DomainSpec(
        name="medicine",
        description="A clinic: patients, drugs, prescriptions.",
        tables=[patients, doctors, drugs, rx],
        tools=tools,
    ), rows
