"""The weather domain: cities, daily forecasts, weather alerts and alert subscriptions."""

from __future__ import annotations

import random

from podium.tools.envspec import DomainSpec, ToolSpec

from .kit import Rows, col, get_tool, ids, key_param, param, people, search_tool, step
from .kit import table as tbl


def weather(seed: int) -> tuple[DomainSpec, Rows]:
    """Cities, daily forecasts, weather alerts and alert subscriptions."""
    rng = random.Random(f"weather-{seed}")
    cities = tbl(
        "cities",
        "city",
        "city_id",
        [col("city_id"), col("name", phrase="called {}"), col("country", phrase="in {}")],
    )
    fc = tbl(
        "forecasts",
        "forecast",
        "forecast_id",
        [
            col("forecast_id"),
            col("city_id", ref="cities.city_id", phrase="for city {}"),
            col("date", phrase="on {}"),
            col("condition"),
            col("high_c", "integer"),
            col("low_c", "integer"),
            col("precip_mm", "real"),
        ],
    )
    alerts = tbl(
        "alerts",
        "alert",
        "alert_id",
        [
            col("alert_id"),
            col("city_id", ref="cities.city_id", phrase="for city {}"),
            col("kind", phrase="about {}"),
            col("severity", choices=["minor", "moderate", "severe"]),
            col("status", choices=["active", "cleared"]),
        ],
    )
    subs = tbl(
        "subscriptions",
        "subscription",
        "sub_id",
        [
            col("sub_id"),
            col("email", phrase="of {}"),
            col("city_id", ref="cities.city_id", phrase="for city {}"),
            col("status", choices=["active", "cancelled"]),
        ],
    )
    kinds = ["storm", "heat", "flood", "snow", "wind"]
    tools = [
        get_tool(cities, "W0001"),
        get_tool(
            fc,
            "F0001",
            intent="tell me the condition and high temperature of {forecast_id}",
            reports=("record.condition", "record.high_c"),
        ),
        get_tool(
            alerts,
            "AL0001",
            intent="tell me the severity and status of {alert_id}",
            reports=("record.severity", "record.status"),
        ),
        search_tool(
            "search_cities",
            cities,
            [("name", "like", "name", "City name."), ("country", "=", "country", "Country.")],
            "Find cities.",
        ),
        search_tool(
            "search_forecasts",
            fc,
            [
                ("city_id", "=", "city_id", "City id, like 'W0001'."),
                ("date", "=", "date", "YYYY-MM-DD."),
                ("condition", "=", "condition", "sunny, cloudy, rain, snow or storm."),
            ],
            "Find daily forecasts by city, date or condition.",
            order="date",
        ),
        search_tool(
            "search_alerts",
            alerts,
            [
                ("city_id", "=", "city_id", "City id."),
                ("kind", "=", "kind", "/".join(kinds) + "."),
                ("status", "=", "status", "active or cleared."),
            ],
            "Find weather alerts.",
        ),
        ToolSpec(
            name="issue_alert",
            description="Issue a weather alert for a city; a city cannot have "
            "two active alerts of the same kind.",
            params=[
                key_param("city_id", "city", "W0001", "cities"),
                param("kind", "/".join(kinds) + ".", sample="choice:" + "|".join(kinds)),
                param(
                    "severity", "minor, moderate or severe.", sample="choice:minor|moderate|severe"
                ),
            ],
            steps=[
                step("get", table="cities", key="city_id", name="city"),
                step("check", expr=f"kind in {kinds}", error="unknown alert kind {kind}"),
                step(
                    "check",
                    expr="severity in ['minor', 'moderate', 'severe']",
                    error="severity must be minor, moderate or severe",
                ),
                step("let", name="active", expr="'active'"),
                step(
                    "search",
                    table="alerts",
                    name="results",
                    where=[
                        ("city_id", "=", "city_id"),
                        ("kind", "=", "kind"),
                        ("status", "=", "active"),
                    ],
                ),
                step(
                    "check",
                    expr="len(results) == 0",
                    error="{city.name} already has an active {kind} alert",
                ),
                step(
                    "insert",
                    table="alerts",
                    name="alert",
                    set={
                        "alert_id": "new_id('alerts', 'AL')",
                        "city_id": "city_id",
                        "kind": "kind",
                        "severity": "severity",
                        "status": "'active'",
                    },
                ),
            ],
            returns="Issued {severity} {kind} alert {alert.alert_id} for {city.name}.",
            intent="issue a {severity} {kind} alert for {city_id} and tell me the alert id",
            reports=["alert.alert_id"],
        ),
        ToolSpec(
            name="clear_alert",
            description="Clear an active alert.",
            params=[key_param("alert_id", "alert", "AL0001", "alerts", "r.status == 'active'")],
            steps=[
                step("get", table="alerts", key="alert_id", name="alert"),
                step(
                    "check",
                    expr="alert.status == 'active'",
                    error="alert {alert_id} is already cleared",
                ),
                step("update", table="alerts", key="alert_id", set={"status": "'cleared'"}),
            ],
            returns="Alert {alert_id} is cleared.",
            intent="clear {alert_id}",
        ),
        ToolSpec(
            name="subscribe",
            description="Subscribe an email address to a city's alerts.",
            params=[
                param("email", "Email address.", sample="email"),
                key_param("city_id", "city", "W0001", "cities"),
            ],
            steps=[
                step("get", table="cities", key="city_id", name="city"),
                step("check", expr="'@' in email", error="{email} is not an email address"),
                step("let", name="active", expr="'active'"),
                step(
                    "search",
                    table="subscriptions",
                    name="results",
                    where=[
                        ("email", "=", "email"),
                        ("city_id", "=", "city_id"),
                        ("status", "=", "active"),
                    ],
                ),
                step(
                    "check",
                    expr="len(results) == 0",
                    error="{email} is already subscribed to {city.name}",
                ),
                step(
                    "insert",
                    table="subscriptions",
                    name="sub",
                    set={
                        "sub_id": "new_id('subscriptions', 'SB')",
                        "email": "lower(email)",
                        "city_id": "city_id",
                        "status": "'active'",
                    },
                ),
            ],
            returns="Subscribed {email} to alerts for {city.name} ({sub.sub_id}).",
            intent="subscribe {email} to the alerts of {city_id}",
        ),
    ]
    countries = {
        "Boston": "USA",
        "Chicago": "USA",
        "Denver": "USA",
        "Seattle": "USA",
        "Madrid": "Spain",
        "Lyon": "France",
        "Porto": "Portugal",
        "Vienna": "Austria",
        "Prague": "Czechia",
        "Oslo": "Norway",
    }
    rows: Rows = {
        "cities": [
            {"city_id": c, "name": n, "country": k}
            for c, (n, k) in zip(ids("W", 10), countries.items(), strict=False)
        ]
    }
    rows["forecasts"] = []
    for c in rows["cities"]:
        for d in range(7):
            high = rng.randrange(-2, 30)
            rows["forecasts"].append(
                {
                    "forecast_id": f"F{len(rows['forecasts']) + 1:04d}",
                    "city_id": c["city_id"],
                    "date": f"2025-03-{d + 1:02d}",
                    "condition": rng.choice(
                        ["sunny", "cloudy", "rain", "snow" if high < 5 else "rain", "storm"]
                    ),
                    "high_c": high,
                    "low_c": high - rng.randrange(3, 12),
                    "precip_mm": round(rng.uniform(0, 25), 1),
                }
            )
    rows["alerts"] = [
        {
            "alert_id": f"AL{i:04d}",
            "city_id": rng.choice(rows["cities"])["city_id"],
            "kind": rng.choice(kinds),
            "severity": rng.choice(["minor", "moderate", "severe"]),
            "status": rng.choice(["active", "cleared"]),
        }
        for i in range(1, 16)
    ]
    rows["subscriptions"] = [
        {
            "sub_id": f"SB{i:04d}",
            "email": n.lower().replace(" ", ".") + "@mail.com",
            "city_id": rng.choice(rows["cities"])["city_id"],
            "status": "active",
        }
        for i, n in enumerate(people(rng, 20), 1)
    ]
    return DomainSpec(
        name="weather",
        description="A weather service: forecasts, alerts.",
        tables=[cities, fc, alerts, subs],
        tools=tools,
    ), rows
