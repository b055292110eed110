"""The bank domain: customers, their checking and savings accounts, and the transaction ledger."""

from __future__ import annotations

import random

from podium.tools.envspec import DomainSpec, ToolSpec

from .kit import (
    CITIES,
    Rows,
    col,
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


def bank(seed: int) -> tuple[DomainSpec, Rows]:
    """Customers, their checking and savings accounts, and the transaction ledger."""
    rng = random.Random(f"bank-{seed}")
    customers = tbl(
        "customers",
        "customer",
        "customer_id",
        [
            col("customer_id"),
            col("name", phrase="owned by {}"),
            col("city"),
            col("tier", choices=["standard", "gold"]),
        ],
    )
    accounts = tbl(
        "accounts",
        "account",
        "account_id",
        [
            col("account_id"),
            col("customer_id", ref="customers.customer_id", phrase="of customer {}"),
            col("type", choices=["checking", "savings"], phrase="of type {}"),
            col("balance", "real"),
            col("status", choices=["open", "frozen"]),
        ],
    )
    txns = tbl(
        "transactions",
        "transaction",
        "txn_id",
        [
            col("txn_id"),
            col("account_id", ref="accounts.account_id"),
            col("kind", choices=["deposit", "withdrawal", "transfer_in", "transfer_out"]),
            col("amount", "real"),
            col("counterparty"),
        ],
    )
    amount = param(
        "amount", "Amount in dollars, e.g. 120.5.", "number", sample="money:20:400", fmt="${:.2f}"
    )
    open_acct = "r.status == 'open'"
    log = "new_id('transactions', 'T')"
    tools = [
        get_tool(customers, "C0001"),
        get_tool(
            accounts,
            "A0001",
            intent="tell me the current balance of {account_id}",
            reports=("record.balance",),
            fmt="{:.2f}",
        ),
        search_tool(
            "search_customers",
            customers,
            [
                ("name", "like", "name", "Part of the customer's name."),
                ("city", "=", "city", "City, e.g. 'Boston'."),
            ],
            "Find customers by name or city.",
        ),
        search_tool(
            "search_accounts",
            accounts,
            [
                ("customer_id", "=", "customer_id", "Owner's customer id, like 'C0001'."),
                ("type", "=", "type", "'checking' or 'savings'."),
                ("status", "=", "status", "'open' or 'frozen'."),
            ],
            "Find accounts by owner, type or status.",
        ),
        search_tool(
            "list_transactions",
            txns,
            [
                ("account_id", "=", "account_id", "Account id, like 'A0001'."),
                ("kind", "=", "kind", "deposit, withdrawal, transfer_in or transfer_out."),
            ],
            "List the transactions of an account, newest first.",
            order="txn_id DESC",
        ),
        ToolSpec(
            name="deposit",
            description="Deposit money into an open account.",
            params=[key_param("account_id", "account", "A0001", "accounts", open_acct), amount],
            steps=[
                step("get", table="accounts", key="account_id", name="acct"),
                step("check", expr="amount > 0", error="the amount must be positive"),
                step(
                    "check",
                    expr="acct.status == 'open'",
                    error="account {account_id} is frozen: unfreeze it first",
                ),
                step("let", name="new_balance", expr="round(acct.balance + amount, 2)"),
                step("update", table="accounts", key="account_id", set={"balance": "new_balance"}),
                step(
                    "insert",
                    table="transactions",
                    set={
                        "txn_id": log,
                        "account_id": "account_id",
                        "kind": "'deposit'",
                        "amount": "amount",
                        "counterparty": "'cash'",
                    },
                ),
            ],
            returns="Deposited ${amount:.2f} into {account_id}. New balance: ${new_balance:.2f}.",
            intent="deposit {amount} into {account_id} and tell me the new balance",
            reports=["new_balance"],
            report_fmt="{:.2f}",
        ),
        ToolSpec(
            name="withdraw",
            description="Withdraw money from an open account; the balance may not go below zero.",
            params=[key_param("account_id", "account", "A0001", "accounts", open_acct), amount],
            steps=[
                step("get", table="accounts", key="account_id", name="acct"),
                step("check", expr="amount > 0", error="the amount must be positive"),
                step(
                    "check",
                    expr="acct.status == 'open'",
                    error="account {account_id} is frozen: unfreeze it first",
                ),
                step(
                    "check",
                    expr="acct.balance >= amount",
                    error="insufficient funds: "
                    "{account_id} has ${acct.balance:.2f}, the withdrawal needs ${amount:.2f}",
                ),
                step("let", name="new_balance", expr="round(acct.balance - amount, 2)"),
                step("update", table="accounts", key="account_id", set={"balance": "new_balance"}),
                step(
                    "insert",
                    table="transactions",
                    set={
                        "txn_id": log,
                        "account_id": "account_id",
                        "kind": "'withdrawal'",
                        "amount": "amount",
                        "counterparty": "'cash'",
                    },
                ),
            ],
            returns="Withdrew ${amount:.2f} from {account_id}. New balance: ${new_balance:.2f}.",
            intent="withdraw {amount} from {account_id} and tell me the new balance",
            reports=["new_balance"],
            report_fmt="{:.2f}",
        ),
        ToolSpec(
            name="transfer",
            description="Move money between two different open accounts; the "
            "source balance may not go below zero.",
            params=[
                key_param(
                    "from_account",
                    "source account",
                    "A0001",
                    "accounts",
                    open_acct + " and r.balance > 50",
                ),
                key_param("to_account", "destination account", "A0002", "accounts", open_acct),
                amount,
            ],
            steps=[
                step("get", table="accounts", key="from_account", name="src"),
                step("get", table="accounts", key="to_account", name="dst"),
                step(
                    "check",
                    expr="from_account != to_account",
                    error="the source and destination must differ",
                ),
                step("check", expr="amount > 0", error="the amount must be positive"),
                step(
                    "check",
                    expr="src.status == 'open' and dst.status == 'open'",
                    error="both accounts must be open (frozen accounts cannot move money)",
                ),
                step(
                    "check",
                    expr="src.balance >= amount",
                    error="insufficient funds: "
                    "{from_account} has ${src.balance:.2f}, the transfer needs ${amount:.2f}",
                ),
                step("let", name="new_balance", expr="round(src.balance - amount, 2)"),
                step(
                    "update", table="accounts", key="from_account", set={"balance": "new_balance"}
                ),
                step(
                    "update",
                    table="accounts",
                    key="to_account",
                    set={"balance": "round(dst.balance + amount, 2)"},
                ),
                step(
                    "insert",
                    table="transactions",
                    set={
                        "txn_id": log,
                        "account_id": "from_account",
                        "kind": "'transfer_out'",
                        "amount": "amount",
                        "counterparty": "to_account",
                    },
                ),
                step(
                    "insert",
                    table="transactions",
                    set={
                        "txn_id": log,
                        "account_id": "to_account",
                        "kind": "'transfer_in'",
                        "amount": "amount",
                        "counterparty": "from_account",
                    },
                ),
            ],
            returns="Transferred ${amount:.2f} from {from_account} to {to_account}. New balance "
            "of {from_account}: ${new_balance:.2f}.",
            intent="transfer {amount} from {from_account} to {to_account}, and tell me the new "
            "balance of the source account",
            reports=["new_balance"],
            report_fmt="{:.2f}",
        ),
        ToolSpec(
            name="set_account_status",
            description="Freeze or unfreeze an account.",
            params=[
                key_param("account_id", "account", "A0001", "accounts"),
                param("status", "'frozen' or 'open'.", sample="choice:frozen|open"),
            ],
            steps=[
                step("get", table="accounts", key="account_id", name="acct"),
                step(
                    "check",
                    expr="status in ['open', 'frozen']",
                    error="status must be 'open' or 'frozen'",
                ),
                step(
                    "check",
                    expr="acct.status != status",
                    error="account {account_id} is already {status}",
                ),
                step("update", table="accounts", key="account_id", set={"status": "status"}),
            ],
            returns="Account {account_id} is now {status}.",
            intent="set the status of {account_id} to {status}",
        ),
    ]
    cust_ids = ids("C", 30)
    names = people(rng, 30)
    rows: Rows = {
        "customers": [
            {
                "customer_id": c,
                "name": n,
                "city": rng.choice(CITIES),
                "tier": rng.choice(["standard", "standard", "gold"]),
            }
            for c, n in zip(cust_ids, names, strict=False)
        ]
    }
    rows["accounts"] = []
    for c in cust_ids:
        for kind in rng.sample(["checking", "savings"], rng.choice([1, 2, 2])):
            rows["accounts"].append(
                {
                    "account_id": f"A{len(rows['accounts']) + 1:04d}",
                    "customer_id": c,
                    "type": kind,
                    "balance": money(rng, 0, 5000),
                    "status": rng.choice(["open"] * 6 + ["frozen"]),
                }
            )
    rows["transactions"] = [
        {
            "txn_id": t,
            "account_id": rng.choice(rows["accounts"])["account_id"],
            "kind": rng.choice(["deposit", "withdrawal"]),
            "amount": money(rng, 5, 800),
            "counterparty": "cash",
        }
        for t in ids("T", 120)
    ]
    return DomainSpec(
        name="bank",
        description="A retail bank: customers, accounts, transfers.",
        tables=[customers, accounts, txns],
        tools=tools,
    ), rows
