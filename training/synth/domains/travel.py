"""The travel domain: flights and hotels with availability, travelers, and bookings."""

from __future__ import annotations

import random

from podium.tools.envspec import DomainSpec, ToolSpec

from .kit import (
    CITIES,
    Rows,
    col,
    day,
    get_tool,
    ids,
    key_param,
    money,
    param,
    people,
    search_tool,
    step,
)
from .kit import table as tbl


def travel(seed: int) -> tuple[DomainSpec, Rows]:
    """Flights and hotels with availability, travelers with loyalty points, and bookings."""
    rng = random.Random(f"travel-{seed}")
    travelers = tbl(
        "travelers",
        "traveler",
        "traveler_id",
        [col("traveler_id"), col("name", phrase="named {}"), col("loyalty_points", "integer")],
    )
    flights = tbl(
        "flights",
        "flight",
        "flight_id",
        [
            col("flight_id"),
            col("airline", phrase="with {}"),
            col("origin", phrase="from {}"),
            col("destination", phrase="to {}"),
            col("date", phrase="on {}"),
            col("price", "real"),
            col("seats_left", "integer"),
        ],
    )
    hotels = tbl(
        "hotels",
        "hotel",
        "hotel_id",
        [
            col("hotel_id"),
            col("name", phrase="named {}"),
            col("city", phrase="in {}"),
            col("stars", "integer", phrase="with {} stars"),
            col("nightly_rate", "real"),
            col("rooms_left", "integer"),
        ],
    )
    bookings = tbl(
        "bookings",
        "booking",
        "booking_id",
        [
            col("booking_id"),
            col("traveler_id", ref="travelers.traveler_id", phrase="of traveler {}"),
            col("kind", choices=["flight", "hotel"], phrase="for a {}"),
            col("item_id"),
            col("nights", "integer"),
            col("total", "real"),
            col("status", choices=["confirmed", "cancelled"]),
        ],
    )
    loyalty = "traveler.loyalty_points + int(total // 10)"
    tools = [
        get_tool(
            travelers,
            "TV0001",
            intent="tell me how many loyalty points {traveler_id} has",
            reports=("record.loyalty_points",),
        ),
        get_tool(
            flights,
            "FL0001",
            intent="tell me the price and date of {flight_id}",
            reports=("record.price", "record.date"),
        ),
        get_tool(
            hotels,
            "HT0001",
            intent="tell me the nightly rate of {hotel_id}",
            reports=("record.nightly_rate",),
        ),
        get_tool(bookings, "BK0001"),
        search_tool(
            "search_flights",
            flights,
            [
                ("origin", "=", "origin", "Origin city, e.g. 'Boston'."),
                ("destination", "=", "destination", "Destination city."),
                ("date", "=", "date", "YYYY-MM-DD."),
                ("airline", "=", "airline", "Airline name."),
            ],
            "Find flights by route, date or airline, cheapest first.",
            order="price",
        ),
        search_tool(
            "search_hotels",
            hotels,
            [
                ("city", "=", "city", "City."),
                ("name", "like", "name", "Part of the hotel name."),
                ("stars", ">=", "min_stars", "Lowest star rating (1-5)."),
                ("nightly_rate", "<=", "max_rate", "Highest nightly rate."),
            ],
            "Find hotels by city, name, stars or rate, cheapest first.",
            order="nightly_rate",
        ),
        ToolSpec(
            name="book_flight",
            description="Book a seat on a flight for a traveler; earns one loyalty point per $10.",
            params=[
                key_param("traveler_id", "traveler", "TV0001", "travelers"),
                key_param("flight_id", "flight", "FL0001", "flights", "r.seats_left > 0"),
            ],
            steps=[
                step("get", table="travelers", key="traveler_id", name="traveler"),
                step("get", table="flights", key="flight_id", name="flight"),
                step("check", expr="flight.seats_left > 0", error="flight {flight_id} is full"),
                step("let", name="total", expr="flight.price"),
                step(
                    "update",
                    table="flights",
                    key="flight_id",
                    set={"seats_left": "flight.seats_left - 1"},
                ),
                step(
                    "update", table="travelers", key="traveler_id", set={"loyalty_points": loyalty}
                ),
                step(
                    "insert",
                    table="bookings",
                    name="booking",
                    set={
                        "booking_id": "new_id('bookings', 'BK')",
                        "traveler_id": "traveler_id",
                        "kind": "'flight'",
                        "item_id": "flight_id",
                        "nights": "0",
                        "total": "total",
                        "status": "'confirmed'",
                    },
                ),
            ],
            returns="Booked {flight_id} for {traveler.name} ({booking.booking_id}), ${total:.2f}.",
            intent="book {flight_id} for {traveler_id} and tell me the booking id",
            reports=["booking.booking_id"],
        ),
        ToolSpec(
            name="book_hotel",
            description="Book a hotel room for 1-14 nights; costs the nightly "
            "rate times the nights and earns one loyalty point per $10.",
            params=[
                key_param("traveler_id", "traveler", "TV0001", "travelers"),
                key_param("hotel_id", "hotel", "HT0001", "hotels", "r.rooms_left > 0"),
                param("nights", "Number of nights (1-14).", "integer", sample="int:1:6"),
            ],
            steps=[
                step("get", table="travelers", key="traveler_id", name="traveler"),
                step("get", table="hotels", key="hotel_id", name="hotel"),
                step("check", expr="nights >= 1 and nights <= 14", error="book 1 to 14 nights"),
                step("check", expr="hotel.rooms_left > 0", error="{hotel.name} has no rooms left"),
                step("let", name="total", expr="round(hotel.nightly_rate * nights, 2)"),
                step(
                    "update",
                    table="hotels",
                    key="hotel_id",
                    set={"rooms_left": "hotel.rooms_left - 1"},
                ),
                step(
                    "update", table="travelers", key="traveler_id", set={"loyalty_points": loyalty}
                ),
                step(
                    "insert",
                    table="bookings",
                    name="booking",
                    set={
                        "booking_id": "new_id('bookings', 'BK')",
                        "traveler_id": "traveler_id",
                        "kind": "'hotel'",
                        "item_id": "hotel_id",
                        "nights": "nights",
                        "total": "total",
                        "status": "'confirmed'",
                    },
                ),
            ],
            returns="Booked {nights} night(s) at {hotel.name} for {traveler.name} "
            "({booking.booking_id}), total ${total:.2f}.",
            intent="book {nights} night(s) at {hotel_id} for {traveler_id} and tell me the total",
            reports=["total"],
            report_fmt="{:.2f}",
        ),
        ToolSpec(
            name="cancel_booking",
            description="Cancel a confirmed booking (flight or hotel); the "
            "seat or room is released.",
            params=[
                key_param("booking_id", "booking", "BK0001", "bookings", "r.status == 'confirmed'")
            ],
            steps=[
                step("get", table="bookings", key="booking_id", name="booking"),
                step(
                    "check",
                    expr="booking.status == 'confirmed'",
                    error="booking {booking_id} is already cancelled",
                ),
                step("update", table="bookings", key="booking_id", set={"status": "'cancelled'"}),
            ],
            returns="Booking {booking_id} is cancelled; ${booking.total:.2f} refunded.",
            intent="cancel {booking_id} and tell me the refund",
            reports=["booking.total"],
            report_fmt="{:.2f}",
        ),
    ]
    airlines = ["Skyway", "Northwind", "Bluejet", "Aurora Air"]
    rows: Rows = {
        "travelers": [
            {"traveler_id": t, "name": n, "loyalty_points": rng.randrange(0, 900)}
            for t, n in zip(ids("TV", 30), people(rng, 30), strict=False)
        ]
    }
    rows["flights"] = []
    for f in ids("FL", 50):
        a, b = rng.sample(CITIES[:8], 2)
        rows["flights"].append(
            {
                "flight_id": f,
                "airline": rng.choice(airlines),
                "origin": a,
                "destination": b,
                "date": day(rng, 10),
                "price": money(rng, 60, 600),
                "seats_left": rng.randrange(0, 20),
            }
        )
    words = ["Grand", "Harbor", "Park", "Royal", "Garden", "Central"]
    rows["hotels"] = [
        {
            "hotel_id": f"HT{i:04d}",
            "name": f"{rng.choice(words)} {c} Hotel",
            "city": c,
            "stars": rng.randrange(2, 6),
            "nightly_rate": money(rng, 70, 380),
            "rooms_left": rng.randrange(0, 12),
        }
        for i, c in enumerate(CITIES[:8] * 3, 1)
    ]
    rows["bookings"] = []
    for b in ids("BK", 30):
        flight = rng.choice(rows["flights"])
        rows["bookings"].append(
            {
                "booking_id": b,
                "traveler_id": rng.choice(rows["travelers"])["traveler_id"],
                "kind": "flight",
                "item_id": flight["flight_id"],
                "nights": 0,
                "total": flight["price"],
                "status": rng.choice(["confirmed"] * 3 + ["cancelled"]),
            }
        )
    return DomainSpec(
        name="travel",
        description="A travel agency: flights, hotels, bookings.",
        tables=[travelers, flights, hotels, bookings],
        tools=tools,
    ), rows
