"""The restaurant domain: restaurants with capacity, their menus, and table reservations."""

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


def restaurant(seed: int) -> tuple[DomainSpec, Rows]:
    """Restaurants with capacity, their menus, and table reservations."""
    rng = random.Random(f"restaurant-{seed}")
    rests = tbl(
        "restaurants",
        "restaurant",
        "restaurant_id",
        [
            col("restaurant_id"),
            col("name", phrase="named {}"),
            col("cuisine", phrase="serving {} food"),
            col("city", phrase="in {}"),
            col("rating", "real"),
            col("capacity", "integer"),
        ],
    )
    menu = tbl(
        "menu_items",
        "menu item",
        "item_id",
        [
            col("item_id"),
            col("restaurant_id", ref="restaurants.restaurant_id"),
            col("name"),
            col("price", "real"),
            col("vegetarian", "integer"),
        ],
    )
    res = tbl(
        "reservations",
        "reservation",
        "reservation_id",
        [
            col("reservation_id"),
            col("restaurant_id", ref="restaurants.restaurant_id", phrase="at restaurant {}"),
            col("guest_name", phrase="for {}"),
            col("date", phrase="on {}"),
            col("time"),
            col("party_size", "integer"),
            col("status", choices=["booked", "cancelled"]),
        ],
    )
    booked = "r.status == 'booked'"
    taken = "total(results, 'party_size')"
    tools = [
        get_tool(
            rests,
            "R0001",
            intent="tell me the rating and city of {restaurant_id}",
            reports=("record.rating", "record.city"),
        ),
        get_tool(
            res,
            "V0001",
            intent="tell me the date, time and party size of {reservation_id}",
            reports=("record.date", "record.time", "record.party_size"),
        ),
        search_tool(
            "search_restaurants",
            rests,
            [
                ("name", "like", "name", "Part of the name."),
                ("cuisine", "=", "cuisine", "e.g. 'thai'."),
                ("city", "=", "city", "City."),
                ("rating", ">=", "min_rating", "Lowest rating (1-5)."),
            ],
            "Find restaurants by name, cuisine, city or rating.",
            order="rating DESC",
        ),
        search_tool(
            "search_menu",
            menu,
            [
                ("restaurant_id", "=", "restaurant_id", "Restaurant id, like 'R0001'."),
                ("vegetarian", "=", "vegetarian", "1 for vegetarian dishes only."),
                ("price", "<=", "max_price", "Highest price."),
            ],
            "Read a restaurant's menu.",
        ),
        search_tool(
            "search_reservations",
            res,
            [
                ("guest_name", "like", "guest_name", "Guest's name."),
                ("restaurant_id", "=", "restaurant_id", "Restaurant id."),
                ("date", "=", "date", "YYYY-MM-DD."),
                ("status", "=", "status", "booked or cancelled."),
            ],
            "Find reservations by guest, restaurant, date or status.",
        ),
        ToolSpec(
            name="make_reservation",
            description="Reserve a table; the party must fit in the "
            "seats the restaurant has left at that date and time (parties of 1-12).",
            params=[
                key_param("restaurant_id", "restaurant", "R0001", "restaurants"),
                param("guest_name", "Guest's full name.", sample="name"),
                param("date", "YYYY-MM-DD.", sample="date:10"),
                param("time", "HH:MM, e.g. '19:30'.", sample="choice:18:00|19:00|19:30|20:30"),
                param("party_size", "Number of guests.", "integer", sample="int:2:8"),
            ],
            steps=[
                step("get", table="restaurants", key="restaurant_id", name="place"),
                step(
                    "check",
                    expr="party_size >= 1 and party_size <= 12",
                    error="parties must be 1 to 12 guests",
                ),
                step("let", name="booked", expr="'booked'"),
                step(
                    "search",
                    table="reservations",
                    name="results",
                    limit=50,
                    where=[
                        ("restaurant_id", "=", "restaurant_id"),
                        ("date", "=", "date"),
                        ("time", "=", "time"),
                        ("status", "=", "booked"),
                    ],
                ),
                step(
                    "check",
                    expr=f"{taken} + party_size <= place.capacity",
                    error="{place.name} has only {place.capacity - " + taken + "} seat(s) "
                    "left on {date} at {time}",
                ),
                step(
                    "insert",
                    table="reservations",
                    name="booking",
                    set={
                        "reservation_id": "new_id('reservations', 'V')",
                        "restaurant_id": "restaurant_id",
                        "guest_name": "guest_name",
                        "date": "date",
                        "time": "time",
                        "party_size": "party_size",
                        "status": "'booked'",
                    },
                ),
            ],
            returns="Reserved a table for {party_size} at {place.name} on {date} at {time} "
            "({booking.reservation_id}).",
            intent="reserve a table for {party_size} at {restaurant_id} on {date} at {time} for "
            "{guest_name}",
        ),
        ToolSpec(
            name="cancel_reservation",
            description="Cancel a booked reservation.",
            params=[key_param("reservation_id", "reservation", "V0001", "reservations", booked)],
            steps=[
                step("get", table="reservations", key="reservation_id", name="booking"),
                step(
                    "check",
                    expr="booking.status == 'booked'",
                    error="reservation {reservation_id} is already cancelled",
                ),
                step(
                    "update",
                    table="reservations",
                    key="reservation_id",
                    set={"status": "'cancelled'"},
                ),
            ],
            returns="Reservation {reservation_id} is cancelled.",
            intent="cancel {reservation_id}",
        ),
        ToolSpec(
            name="change_party_size",
            description="Change the number of guests of a booked "
            "reservation, if the restaurant has room.",
            params=[
                key_param("reservation_id", "reservation", "V0001", "reservations", booked),
                param("party_size", "New number of guests.", "integer", sample="int:1:10"),
            ],
            steps=[
                step("get", table="reservations", key="reservation_id", name="booking"),
                step(
                    "check",
                    expr="booking.status == 'booked'",
                    error="reservation {reservation_id} is cancelled",
                ),
                step(
                    "check",
                    expr="party_size >= 1 and party_size <= 12",
                    error="parties must be 1 to 12 guests",
                ),
                step("get", table="restaurants", key="booking.restaurant_id", name="place"),
                step("let", name="booked", expr="'booked'"),
                step("let", name="restaurant_id", expr="booking.restaurant_id"),
                step("let", name="date", expr="booking.date"),
                step("let", name="time", expr="booking.time"),
                step(
                    "search",
                    table="reservations",
                    name="results",
                    limit=50,
                    where=[
                        ("restaurant_id", "=", "restaurant_id"),
                        ("date", "=", "date"),
                        ("time", "=", "time"),
                        ("status", "=", "booked"),
                    ],
                ),
                step(
                    "check",
                    expr=f"{taken} - booking.party_size + party_size <= place.capacity",
                    error="{place.name} has no room for {party_size} at that time",
                ),
                step(
                    "check",
                    expr="booking.party_size != party_size",
                    error="the party is already {party_size}",
                ),
                step(
                    "update",
                    table="reservations",
                    key="reservation_id",
                    set={"party_size": "party_size"},
                ),
            ],
            returns="Reservation {reservation_id} is now for {party_size} guest(s).",
            intent="change the party size of {reservation_id} to {party_size}",
        ),
    ]
    cuisines = {
        "thai": ["Pad Thai", "Green Curry", "Tofu Satay"],
        "italian": ["Margherita", "Lasagna", "Risotto"],
        "mexican": ["Tacos", "Bean Burrito", "Enchiladas"],
        "japanese": ["Ramen", "Veggie Maki", "Katsu"],
    }
    veg = {"Tofu Satay", "Margherita", "Risotto", "Bean Burrito", "Veggie Maki"}
    names = [
        "Lotus",
        "Aurora",
        "Juniper",
        "Saffron",
        "Olive",
        "Ember",
        "Basil",
        "Pepper",
        "Harbor",
        "Maple",
        "Willow",
        "Cedar",
    ]
    rows: Rows = {
        "restaurants": [
            {
                "restaurant_id": r,
                "name": f"{n} {k}",
                "cuisine": rng.choice(list(cuisines)),
                "city": rng.choice(CITIES[:6]),
                "rating": round(rng.uniform(3, 5), 1),
                "capacity": rng.choice([12, 20, 30]),
            }
            for r, n, k in zip(
                ids("R", 12), names, ["Kitchen", "Bistro", "House"] * 4, strict=False
            )
        ]
    }
    rows["menu_items"] = [
        {
            "item_id": f"I{i:04d}",
            "restaurant_id": r["restaurant_id"],
            "name": dish,
            "price": money(rng, 9, 28),
            "vegetarian": int(dish in veg),
        }
        for i, (r, dish) in enumerate(
            ((r, d) for r in rows["restaurants"] for d in cuisines[r["cuisine"]]), 1
        )
    ]
    rows["reservations"] = [
        {
            "reservation_id": v,
            "restaurant_id": rng.choice(rows["restaurants"])["restaurant_id"],
            "guest_name": n,
            "date": day(rng, 10),
            "time": rng.choice(["18:00", "19:00", "19:30"]),
            "party_size": rng.randrange(2, 7),
            "status": rng.choice(["booked"] * 4 + ["cancelled"]),
        }
        for v, n in zip(ids("V", 40), people(rng, 40), strict=False)
    ]
    return DomainSpec(
        name="restaurant",
        description="Restaurants: menus, capacity, reservations.",
        tables=[rests, menu, res],
        tools=tools,
    ), rows
