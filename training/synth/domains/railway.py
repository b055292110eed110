"""The railway domain: stations, dated trains with seats, passengers with railcards, and tickets."""

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
    money,
    param,
    people,
    search_tool,
    step,
)
from .kit import table as tbl


def railway(seed: int) -> tuple[DomainSpec, Rows]:
    """Stations, dated trains with seats, passengers with railcards, and tickets."""
    rng = random.Random(f"railway-{seed}")
    stations = tbl(
        "stations",
        "station",
        "station_id",
        [col("station_id"), col("name", phrase="called {}"), col("city", phrase="in {}")],
    )
    trains = tbl(
        "trains",
        "train",
        "train_id",
        [
            col("train_id"),
            col("origin", ref="stations.station_id", phrase="from station {}"),
            col("destination", ref="stations.station_id", phrase="to station {}"),
            col("date", phrase="on {}"),
            col("departure", phrase="leaving at {}"),
            col("seats_left", "integer"),
            col("fare", "real"),
        ],
    )
    pax = tbl(
        "passengers",
        "passenger",
        "passenger_id",
        [
            col("passenger_id"),
            col("name", phrase="named {}"),
            col("railcard", choices=["none", "youth", "senior"]),
        ],
    )
    tickets = tbl(
        "tickets",
        "ticket",
        "ticket_id",
        [
            col("ticket_id"),
            col("passenger_id", ref="passengers.passenger_id", phrase="of passenger {}"),
            col("train_id", ref="trains.train_id", phrase="on train {}"),
            col("fare_paid", "real"),
            col("status", choices=["booked", "cancelled"]),
        ],
    )
    tools = [
        get_tool(stations, "ST0001"),
        get_tool(
            trains,
            "TR0001",
            intent="tell me the departure time and fare of {train_id}",
            reports=("record.departure", "record.fare"),
        ),
        get_tool(
            pax,
            "PA0001",
            intent="tell me which railcard {passenger_id} holds",
            reports=("record.railcard",),
        ),
        get_tool(
            tickets,
            "TK0001",
            intent="tell me the fare paid for {ticket_id}",
            reports=("record.fare_paid",),
            fmt="{:.2f}",
        ),
        search_tool(
            "search_stations",
            stations,
            [("name", "like", "name", "Station name."), ("city", "=", "city", "City.")],
            "Find stations.",
        ),
        search_tool(
            "search_trains",
            trains,
            [
                ("origin", "=", "origin", "Origin station id, like 'ST0001'."),
                ("destination", "=", "destination", "Destination station id."),
                ("date", "=", "date", "YYYY-MM-DD."),
                ("departure", "=", "departure", "HH:MM."),
            ],
            "Find trains by route, date or departure time.",
            order="date, departure",
        ),
        search_tool(
            "search_tickets",
            tickets,
            [
                ("passenger_id", "=", "passenger_id", "Passenger id, like 'PA0001'."),
                ("train_id", "=", "train_id", "Train id."),
                ("status", "=", "status", "booked or cancelled."),
            ],
            "Find tickets by passenger, train or status.",
        ),
        ToolSpec(
            name="book_ticket",
            description="Book a seat on a train for a passenger. Youth and "
            "senior railcards get 25% off the fare. A passenger can hold one booked ticket per "
            "train.",
            params=[
                key_param("passenger_id", "passenger", "PA0001", "passengers"),
                key_param("train_id", "train", "TR0001", "trains", "r.seats_left > 0"),
            ],
            steps=[
                step("get", table="passengers", key="passenger_id", name="passenger"),
                step("get", table="trains", key="train_id", name="train"),
                step("check", expr="train.seats_left > 0", error="train {train_id} is full"),
                step("let", name="booked", expr="'booked'"),
                step(
                    "search",
                    table="tickets",
                    name="results",
                    where=[
                        ("passenger_id", "=", "passenger_id"),
                        ("train_id", "=", "train_id"),
                        ("status", "=", "booked"),
                    ],
                ),
                step(
                    "check",
                    expr="len(results) == 0",
                    error="{passenger.name} already has a ticket on {train_id}",
                ),
                step(
                    "let",
                    name="price",
                    expr="round(train.fare * (0.75 if passenger.railcard "
                    "in ['youth', 'senior'] else 1.0), 2)",
                ),
                step(
                    "update",
                    table="trains",
                    key="train_id",
                    set={"seats_left": "train.seats_left - 1"},
                ),
                step(
                    "insert",
                    table="tickets",
                    name="ticket",
                    set={
                        "ticket_id": "new_id('tickets', 'TK')",
                        "passenger_id": "passenger_id",
                        "train_id": "train_id",
                        "fare_paid": "price",
                        "status": "'booked'",
                    },
                ),
            ],
            returns="Booked {ticket.ticket_id} for {passenger.name} on {train_id} ({train.date} "
            "{train.departure}); fare ${price:.2f}.",
            intent="book a ticket on {train_id} for {passenger_id} and tell me the fare charged",
            reports=["price"],
            report_fmt="{:.2f}",
        ),
        ToolSpec(
            name="cancel_ticket",
            description="Cancel a booked ticket; the fare is refunded and the seat released.",
            params=[key_param("ticket_id", "ticket", "TK0001", "tickets", "r.status == 'booked'")],
            steps=[
                step("get", table="tickets", key="ticket_id", name="ticket"),
                step(
                    "check",
                    expr="ticket.status == 'booked'",
                    error="ticket {ticket_id} is already cancelled",
                ),
                step("get", table="trains", key="ticket.train_id", name="train"),
                step("update", table="tickets", key="ticket_id", set={"status": "'cancelled'"}),
                step(
                    "update",
                    table="trains",
                    key="ticket.train_id",
                    set={"seats_left": "train.seats_left + 1"},
                ),
            ],
            returns="Ticket {ticket_id} is cancelled; ${ticket.fare_paid:.2f} refunded.",
            intent="cancel {ticket_id} and tell me the refund",
            reports=["ticket.fare_paid"],
            report_fmt="{:.2f}",
        ),
        ToolSpec(
            name="set_railcard",
            description="Set a passenger's railcard: none, youth or senior.",
            params=[
                key_param("passenger_id", "passenger", "PA0001", "passengers"),
                param("railcard", "none, youth or senior.", sample="choice:none|youth|senior"),
            ],
            steps=[
                step("get", table="passengers", key="passenger_id", name="passenger"),
                step(
                    "check",
                    expr="railcard in ['none', 'youth', 'senior']",
                    error="railcard must be none, youth or senior",
                ),
                step(
                    "check",
                    expr="passenger.railcard != railcard",
                    error="{passenger.name} already has railcard {railcard}",
                ),
                step(
                    "update", table="passengers", key="passenger_id", set={"railcard": "railcard"}
                ),
            ],
            returns="{passenger.name} now has railcard {railcard}.",
            intent="set the railcard of {passenger_id} to {railcard}",
        ),
    ]
    rows: Rows = {
        "stations": [
            {"station_id": s, "name": f"{c} Central", "city": c}
            for s, c in zip(ids("ST", 8), CITIES, strict=False)
        ]
    }
    st = [s["station_id"] for s in rows["stations"]]
    rows["trains"] = []
    for t in ids("TR", 50):
        a, b = rng.sample(st, 2)
        rows["trains"].append(
            {
                "train_id": t,
                "origin": a,
                "destination": b,
                "date": day(rng, 7),
                "departure": clock(rng, 6, 22),
                "seats_left": rng.randrange(0, 40),
                "fare": money(rng, 15, 140),
            }
        )
    rows["passengers"] = [
        {"passenger_id": p, "name": n, "railcard": rng.choice(["none", "none", "youth", "senior"])}
        for p, n in zip(ids("PA", 40), people(rng, 40), strict=False)
    ]
    rows["tickets"] = []
    for k in ids("TK", 40):
        train = rng.choice(rows["trains"])
        rows["tickets"].append(
            {
                "ticket_id": k,
                "passenger_id": rng.choice(rows["passengers"])["passenger_id"],
                "train_id": train["train_id"],
                "fare_paid": train["fare"],
                "status": rng.choice(["booked"] * 3 + ["cancelled"]),
            }
        )
    return DomainSpec(
        name="railway",
        description="A railway: trains, passengers, tickets.",
        tables=[stations, trains, pax, tickets],
        tools=tools,
    ), rows
