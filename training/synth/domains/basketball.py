"""The basketball domain: teams, players and games of a league."""

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
    param,
    people,
    search_tool,
    step,
)
from .kit import table as tbl

TEAMS = [
    "Hawks",
    "Comets",
    "Wolves",
    "Pilots",
    "Giants",
    "Owls",
    "Rangers",
    "Sharks",
    "Titans",
    "Foxes",
    "Bears",
    "Storm",
]


def basketball(seed: int) -> tuple[DomainSpec, Rows]:
    """Teams, players and games of a league."""
    rng = random.Random(f"basketball-{seed}")
    teams = tbl(
        "teams",
        "team",
        "team_id",
        [
            col("team_id"),
            col("name", phrase="called the {}"),
            col("city", phrase="from {}"),
            col("wins", "integer"),
            col("losses", "integer"),
        ],
    )
    players = tbl(
        "players",
        "player",
        "player_id",
        [
            col("player_id"),
            col("name", phrase="named {}"),
            col("team_id", ref="teams.team_id", phrase="of team {}"),
            col("position", choices=["guard", "forward", "center"], phrase="playing {}"),
            col("points_per_game", "real"),
            col("status", choices=["active", "injured"]),
        ],
    )
    games = tbl(
        "games",
        "game",
        "game_id",
        [
            col("game_id"),
            col("home_team", ref="teams.team_id", phrase="hosted by team {}"),
            col("away_team", ref="teams.team_id", phrase="against visiting team {}"),
            col("date", phrase="on {}"),
            col("home_score", "integer"),
            col("away_score", "integer"),
            col("status", choices=["scheduled", "final"]),
        ],
    )
    sched = "r.status == 'scheduled'"
    tools = [
        get_tool(
            teams,
            "K0001",
            intent="tell me the win-loss record of {team_id}",
            reports=("record.wins", "record.losses"),
        ),
        get_tool(
            players,
            "L0001",
            intent="tell me the points per game of {player_id}",
            reports=("record.points_per_game",),
        ),
        get_tool(games, "G0001"),
        search_tool(
            "search_teams",
            teams,
            [
                ("name", "like", "name", "Team name, e.g. 'Hawks'."),
                ("city", "=", "city", "Home city."),
            ],
            "Find teams by name or city.",
        ),
        search_tool(
            "search_players",
            players,
            [
                ("name", "like", "name", "Part of the player's name."),
                ("team_id", "=", "team_id", "Team id, like 'K0001'."),
                ("position", "=", "position", "guard, forward or center."),
                ("status", "=", "status", "active or injured."),
            ],
            "Find players by name, team, position or status.",
        ),
        search_tool(
            "search_games",
            games,
            [
                ("home_team", "=", "home_team", "Home team id."),
                ("away_team", "=", "away_team", "Away team id."),
                ("date", "=", "date", "YYYY-MM-DD."),
                ("status", "=", "status", "scheduled or final."),
            ],
            "Find games by team, date or status.",
            order="date",
        ),
        ToolSpec(
            name="record_result",
            description="Record the final score of a scheduled game; "
            "updates both teams' wins and losses. Ties are not allowed.",
            params=[
                key_param("game_id", "game", "G0001", "games", sched),
                param("home_score", "Points of the home team.", "integer", sample="int:80:125"),
                param("away_score", "Points of the away team.", "integer", sample="int:80:125"),
            ],
            steps=[
                step("get", table="games", key="game_id", name="game"),
                step(
                    "check",
                    expr="game.status == 'scheduled'",
                    error="game {game_id} already has a final score",
                ),
                step("check", expr="home_score != away_score", error="a game cannot end in a tie"),
                step("get", table="teams", key="game.home_team", name="home"),
                step("get", table="teams", key="game.away_team", name="away"),
                step(
                    "let", name="winner", expr="home.name if home_score > away_score else away.name"
                ),
                step(
                    "update",
                    table="games",
                    key="game_id",
                    set={
                        "home_score": "home_score",
                        "away_score": "away_score",
                        "status": "'final'",
                    },
                ),
                step(
                    "update",
                    table="teams",
                    key="game.home_team",
                    set={
                        "wins": "home.wins + (1 if home_score > away_score else 0)",
                        "losses": "home.losses + (1 if home_score < away_score else 0)",
                    },
                ),
                step(
                    "update",
                    table="teams",
                    key="game.away_team",
                    set={
                        "wins": "away.wins + (1 if away_score > home_score else 0)",
                        "losses": "away.losses + (1 if away_score < home_score else 0)",
                    },
                ),
            ],
            returns="Game {game_id} is final, {home_score}-{away_score}; the {winner} won.",
            intent="record a final score of {home_score} (home) to {away_score} (away) for "
            "{game_id} and tell me which team won",
            reports=["winner"],
        ),
        ToolSpec(
            name="trade_player",
            description="Move a player to another team.",
            params=[
                key_param("player_id", "player", "L0001", "players"),
                key_param("team_id", "new team", "K0002", "teams"),
            ],
            steps=[
                step("get", table="players", key="player_id", name="player"),
                step("get", table="teams", key="team_id", name="team"),
                step(
                    "check",
                    expr="player.team_id != team_id",
                    error="{player.name} already plays for {team.name}",
                ),
                step("update", table="players", key="player_id", set={"team_id": "team_id"}),
            ],
            returns="{player.name} now plays for the {team.name}.",
            intent="trade {player_id} to {team_id}",
        ),
        ToolSpec(
            name="set_player_status",
            description="Mark a player active or injured.",
            params=[
                key_param("player_id", "player", "L0001", "players"),
                param("status", "'active' or 'injured'.", sample="choice:active|injured"),
            ],
            steps=[
                step("get", table="players", key="player_id", name="player"),
                step(
                    "check",
                    expr="status in ['active', 'injured']",
                    error="status must be 'active' or 'injured'",
                ),
                step(
                    "check",
                    expr="player.status != status",
                    error="{player.name} is already {status}",
                ),
                step("update", table="players", key="player_id", set={"status": "status"}),
            ],
            returns="{player.name} is now {status}.",
            intent="mark {player_id} as {status}",
        ),
        ToolSpec(
            name="reschedule_game",
            description="Move a scheduled game to another date.",
            params=[
                key_param("game_id", "game", "G0001", "games", sched),
                param("date", "New date, YYYY-MM-DD.", sample="date:20"),
            ],
            steps=[
                step("get", table="games", key="game_id", name="game"),
                step(
                    "check",
                    expr="game.status == 'scheduled'",
                    error="game {game_id} is already final",
                ),
                step(
                    "check", expr="game.date != date", error="game {game_id} is already on {date}"
                ),
                step("update", table="games", key="game_id", set={"date": "date"}),
            ],
            returns="Game {game_id} moved from {game.date} to {date}.",
            intent="move {game_id} to {date}",
        ),
    ]
    rows: Rows = {
        "teams": [
            {
                "team_id": t,
                "name": n,
                "city": c,
                "wins": rng.randrange(3, 20),
                "losses": rng.randrange(3, 20),
            }
            for t, n, c in zip(ids("K", 12), TEAMS, CITIES, strict=False)
        ]
    }
    team_ids = [t["team_id"] for t in rows["teams"]]
    rows["players"] = [
        {
            "player_id": p,
            "name": n,
            "team_id": team_ids[i % 12],
            "position": rng.choice(["guard", "forward", "center"]),
            "points_per_game": round(rng.uniform(2, 31), 1),
            "status": rng.choice(["active"] * 5 + ["injured"]),
        }
        for i, (p, n) in enumerate(zip(ids("L", 60), people(rng, 60), strict=False))
    ]
    rows["games"] = []
    for g in ids("G", 40):
        home, away = rng.sample(team_ids, 2)
        final = rng.random() < 0.4
        rows["games"].append(
            {
                "game_id": g,
                "home_team": home,
                "away_team": away,
                "date": day(rng, 20),
                "home_score": rng.randrange(80, 125) if final else None,
                "away_score": rng.randrange(80, 125) if final else None,
                "status": "final" if final else "scheduled",
            }
        )
    return DomainSpec(
        name="basketball",
        description="A basketball league: teams, players, games.",
        tables=[teams, players, games],
        tools=tools,
    ), rows
