"""The movie domain: films, cinemas, showtimes with seats, and ticket bookings."""

from __future__ import annotations

import random

from podium.tools.envspec import DomainSpec, ToolSpec

from .kit import (
    CITIES,
    Rows,
    clock,
    col,
    day,
    get_tool,
    ids,
    key_param,
    param,
    people,
    search_tool,
    step,
)
from .kit import table as tbl


def movie(seed: int) -> tuple[DomainSpec, Rows]:
    """Films, cinemas, showtimes with seats, and ticket bookings."""
    rng = random.Random(f"movie-{seed}")
    movies = tbl(
        "movies",
        "movie",
        "movie_id",
        [
            col("movie_id"),
            col("title", phrase="titled '{}'"),
            col("genre", phrase="in the {} genre"),
            col("year", "integer"),
            col("rating", "real"),
            col("minutes", "integer"),
        ],
    )
    theaters = tbl(
        "theaters",
        "theater",
        "theater_id",
        [col("theater_id"), col("name", phrase="named {}"), col("city", phrase="in {}")],
    )
    shows = tbl(
        "showtimes",
        "showtime",
        "show_id",
        [
            col("show_id"),
            col("movie_id", ref="movies.movie_id", phrase="of movie {}"),
            col("theater_id", ref="theaters.theater_id", phrase="at theater {}"),
            col("date", phrase="on {}"),
            col("time", phrase="at {}"),
            col("seats_left", "integer"),
            col("price", "real"),
        ],
    )
    bookings = tbl(
        "bookings",
        "booking",
        "booking_id",
        [
            col("booking_id"),
            col("show_id", ref="showtimes.show_id"),
            col("customer_name"),
            col("seats", "integer"),
            col("total", "real"),
            col("status", choices=["booked", "cancelled"]),
        ],
    )
    tools = [
        get_tool(
            movies,
            "M0001",
            intent="tell me the rating and running time of {movie_id}",
            reports=("record.rating", "record.minutes"),
        ),
        get_tool(theaters, "H0001"),
        get_tool(
            shows,
            "S0001",
            intent="tell me how many seats are left for {show_id}",
            reports=("record.seats_left",),
        ),
        get_tool(bookings, "B0001"),
        search_tool(
            "search_movies",
            movies,
            [
                ("title", "like", "title", "Part of the title."),
                ("genre", "=", "genre", "e.g. 'comedy'."),
                ("rating", ">=", "min_rating", "Lowest rating (0-10)."),
            ],
            "Find movies by title, genre or rating.",
        ),
        search_tool(
            "search_showtimes",
            shows,
            [
                ("movie_id", "=", "movie_id", "Movie id, like 'M0001'."),
                ("theater_id", "=", "theater_id", "Theater id, like 'H0001'."),
                ("date", "=", "date", "YYYY-MM-DD."),
                ("time", "=", "time", "HH:MM."),
            ],
            "Find showtimes by movie, theater, date or time.",
            order="date, time",
        ),
        ToolSpec(
            name="book_tickets",
            description="Book 1-8 seats of a showtime for a customer.",
            params=[
                key_param("show_id", "showtime", "S0001", "showtimes", "r.seats_left > 0"),
                param("customer_name", "Full name of the customer.", sample="name"),
                param("seats", "Number of seats (1-8).", "integer", sample="int:1:5"),
            ],
            steps=[
                step("get", table="showtimes", key="show_id", name="show"),
                step("check", expr="seats >= 1 and seats <= 8", error="book between 1 and 8 seats"),
                step(
                    "check",
                    expr="show.seats_left >= seats",
                    error="only {show.seats_left} seat(s) left for {show_id}",
                ),
                step("let", name="total", expr="round(show.price * seats, 2)"),
                step(
                    "update",
                    table="showtimes",
                    key="show_id",
                    set={"seats_left": "show.seats_left - seats"},
                ),
                step(
                    "insert",
                    table="bookings",
                    name="booking",
                    set={
                        "booking_id": "new_id('bookings', 'B')",
                        "show_id": "show_id",
                        "customer_name": "customer_name",
                        "seats": "seats",
                        "total": "total",
                        "status": "'booked'",
                    },
                ),
            ],
            returns="Booked {seats} seat(s) for {customer_name} as {booking.booking_id}; "
            "total ${total:.2f}.",
            intent="book {seats} seat(s) for {show_id} for {customer_name} and tell me the total",
            reports=["total"],
            report_fmt="{:.2f}",
        ),
        ToolSpec(
            name="cancel_booking",
            description="Cancel a booking; its seats are released.",
            params=[
                key_param("booking_id", "booking", "B0001", "bookings", "r.status == 'booked'")
            ],
            steps=[
                step("get", table="bookings", key="booking_id", name="booking"),
                step(
                    "check",
                    expr="booking.status == 'booked'",
                    error="booking {booking_id} is already cancelled",
                ),
                step("get", table="showtimes", key="booking.show_id", name="show"),
                step("update", table="bookings", key="booking_id", set={"status": "'cancelled'"}),
                step(
                    "update",
                    table="showtimes",
                    key="booking.show_id",
                    set={"seats_left": "show.seats_left + booking.seats"},
                ),
            ],
            returns="Booking {booking_id} is cancelled; ${booking.total:.2f} refunded.",
            intent="cancel {booking_id} and tell me the refund",
            reports=["booking.total"],
            report_fmt="{:.2f}",
        ),
    ]
    words = [
        "Silent",
        "Last",
        "Golden",
        "Broken",
        "Hidden",
        "Northern",
        "Paper",
        "Electric",
        "Wild",
        "Midnight",
    ]
    nouns = [
        "River",
        "Garden",
        "Signal",
        "Harbor",
        "Crown",
        "Orbit",
        "Letters",
        "Summer",
        "Engine",
        "Mirror",
    ]
    genres = ["comedy", "drama", "thriller", "animation", "sci-fi"]
    rows: Rows = {
        "movies": [
            {
                "movie_id": m,
                "title": f"The {w} {n}",
                "genre": rng.choice(genres),
                "year": rng.randrange(1995, 2025),
                "rating": round(rng.uniform(4, 9.5), 1),
                "minutes": rng.randrange(85, 170),
            }
            for m, w, n in zip(ids("M", 10), words, rng.sample(nouns, 10), strict=False)
        ]
    }
    rows["theaters"] = [
        {"theater_id": t, "name": f"{c} {k}", "city": c}
        for t, c, k in zip(
            ids("H", 6),
            CITIES,
            ["Odeon", "Rex", "Lumiere", "Palace", "Regal", "Roxy"],
            strict=False,
        )
    ]
    rows["showtimes"] = [
        {
            "show_id": s,
            "movie_id": rng.choice(rows["movies"])["movie_id"],
            "theater_id": rng.choice(rows["theaters"])["theater_id"],
            "date": day(rng, 7),
            "time": clock(rng, 12, 23),
            "seats_left": rng.randrange(0, 60),
            "price": rng.choice([9.5, 11.0, 12.5, 14.0]),
        }
        for s in ids("S", 50)
    ]
    rows["bookings"] = []
    for b, name in zip(ids("B", 30), people(rng, 30), strict=False):
        show = rng.choice(rows["showtimes"])
        seats = rng.randrange(1, 5)
        rows["bookings"].append(
            {
                "booking_id": b,
                "show_id": show["show_id"],
                "customer_name": name,
                "seats": seats,
                "total": round(show["price"] * seats, 2),
                "status": rng.choice(["booked"] * 4 + ["cancelled"]),
            }
        )
    return DomainSpec(
        name="movie",
        description="Cinemas: movies, showtimes, ticket bookings.",
        tables=[movies, theaters, shows, bookings],
        tools=tools,
    ), rows
