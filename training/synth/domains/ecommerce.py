"""The ecommerce domain: customers, a product catalogue with stock, and orders."""

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


def ecommerce(seed: int) -> tuple[DomainSpec, Rows]:
    """Customers, a product catalogue with stock, and orders."""
    rng = random.Random(f"ecommerce-{seed}")
    customers = tbl(
        "customers",
        "customer",
        "customer_id",
        [col("customer_id"), col("name", phrase="named {}"), col("email"), col("city")],
    )
    products = tbl(
        "products",
        "product",
        "product_id",
        [
            col("product_id"),
            col("name", phrase="called {}"),
            col("category", phrase="in the {} category"),
            col("price", "real"),
            col("stock", "integer"),
        ],
    )
    orders = tbl(
        "orders",
        "order",
        "order_id",
        [
            col("order_id"),
            col("customer_id", ref="customers.customer_id", phrase="of customer {}"),
            col("product_id", ref="products.product_id", phrase="for product {}"),
            col("quantity", "integer"),
            col("total", "real"),
            col(
                "status",
                choices=["placed", "shipped", "delivered", "cancelled"],
                phrase="that is {}",
            ),
        ],
    )
    tools = [
        get_tool(
            customers,
            "U0001",
            intent="tell me the email address on file for {customer_id}",
            reports=("record.email",),
        ),
        get_tool(
            products,
            "P0001",
            intent="tell me the price and stock of {product_id}",
            reports=("record.price", "record.stock"),
        ),
        get_tool(
            orders,
            "O0001",
            intent="tell me the status and total of {order_id}",
            reports=("record.status", "record.total"),
        ),
        search_tool(
            "search_products",
            products,
            [
                ("name", "like", "name", "Part of the product name."),
                ("category", "=", "category", "Category, e.g. 'kitchen'."),
                ("price", "<=", "max_price", "Highest price in dollars."),
            ],
            "Find products by name, category or price.",
            order="price",
        ),
        search_tool(
            "search_orders",
            orders,
            [
                ("customer_id", "=", "customer_id", "Customer id, like 'U0001'."),
                ("product_id", "=", "product_id", "Product id, like 'P0001'."),
                ("status", "=", "status", "placed, shipped, delivered or cancelled."),
            ],
            "Find orders by customer, product or status.",
        ),
        ToolSpec(
            name="place_order",
            description="Order a quantity of a product for a customer; "
            "needs enough stock, which the order reduces.",
            params=[
                key_param("customer_id", "customer", "U0001", "customers"),
                key_param("product_id", "product", "P0001", "products", "r.stock > 0"),
                param("quantity", "How many units (1-10).", "integer", sample="int:1:4"),
            ],
            steps=[
                step("get", table="customers", key="customer_id", name="customer"),
                step("get", table="products", key="product_id", name="product"),
                step(
                    "check",
                    expr="quantity >= 1 and quantity <= 10",
                    error="the quantity must be between 1 and 10",
                ),
                step(
                    "check",
                    expr="product.stock >= quantity",
                    error="only {product.stock} "
                    "unit(s) of {product_id} in stock, {quantity} requested",
                ),
                step("let", name="total", expr="round(product.price * quantity, 2)"),
                step(
                    "update",
                    table="products",
                    key="product_id",
                    set={"stock": "product.stock - quantity"},
                ),
                step(
                    "insert",
                    table="orders",
                    name="order",
                    set={
                        "order_id": "new_id('orders', 'O')",
                        "customer_id": "customer_id",
                        "product_id": "product_id",
                        "quantity": "quantity",
                        "total": "total",
                        "status": "'placed'",
                    },
                ),
            ],
            returns="Placed order {order.order_id}: {quantity} x {product.name} for "
            "{customer.name}, total ${total:.2f}.",
            intent="order {quantity} unit(s) of {product_id} for {customer_id} and tell me the "
            "order total",
            reports=["total"],
            report_fmt="{:.2f}",
        ),
        ToolSpec(
            name="cancel_order",
            description="Cancel an order that has not shipped yet; its units go back into stock.",
            params=[key_param("order_id", "order", "O0001", "orders", "r.status == 'placed'")],
            steps=[
                step("get", table="orders", key="order_id", name="order"),
                step(
                    "check",
                    expr="order.status == 'placed'",
                    error="order {order_id} is {order.status}: only placed orders can be cancelled",
                ),
                step("get", table="products", key="order.product_id", name="product"),
                step("update", table="orders", key="order_id", set={"status": "'cancelled'"}),
                step(
                    "update",
                    table="products",
                    key="order.product_id",
                    set={"stock": "product.stock + order.quantity"},
                ),
            ],
            returns="Order {order_id} is cancelled; ${order.total:.2f} will be refunded.",
            intent="cancel {order_id} and tell me how much will be refunded",
            reports=["order.total"],
            report_fmt="{:.2f}",
        ),
        ToolSpec(
            name="ship_order",
            description="Mark a placed order as shipped.",
            params=[key_param("order_id", "order", "O0001", "orders", "r.status == 'placed'")],
            steps=[
                step("get", table="orders", key="order_id", name="order"),
                step(
                    "check",
                    expr="order.status == 'placed'",
                    error="order {order_id} is {order.status}: only placed orders can ship",
                ),
                step("update", table="orders", key="order_id", set={"status": "'shipped'"}),
            ],
            returns="Order {order_id} is shipped.",
            intent="mark {order_id} as shipped",
        ),
        ToolSpec(
            name="update_email",
            description="Change a customer's email address.",
            params=[
                key_param("customer_id", "customer", "U0001", "customers"),
                param("email", "The new address, like 'name@example.com'.", sample="email"),
            ],
            steps=[
                step("get", table="customers", key="customer_id", name="customer"),
                step(
                    "check",
                    expr="'@' in email and '.' in email",
                    error="{email} is not an email address",
                ),
                step("update", table="customers", key="customer_id", set={"email": "lower(email)"}),
            ],
            returns="The email of {customer_id} is now {lower(email)}.",
            intent="change the email address of {customer_id} to {email}",
        ),
    ]
    cats = {
        "kitchen": ["Kettle", "Chef Knife", "Blender", "Toaster"],
        "books": ["Atlas", "Cookbook", "Novel", "Field Guide"],
        "garden": ["Hose", "Rake", "Planter", "Shears"],
        "electronics": ["Headphones", "Charger", "Speaker", "Webcam"],
    }
    names = people(rng, 25)
    rows: Rows = {
        "customers": [
            {
                "customer_id": c,
                "name": n,
                "email": n.lower().replace(" ", ".") + "@mail.com",
                "city": rng.choice(CITIES),
            }
            for c, n in zip(ids("U", 25), names, strict=False)
        ]
    }
    rows["products"] = []
    for cat, items in cats.items():
        for item in items:
            for model in rng.sample(["Basic", "Pro", "Mini"], 2):
                rows["products"].append(
                    {
                        "product_id": f"P{len(rows['products']) + 1:04d}",
                        "name": f"{item} {model}",
                        "category": cat,
                        "price": money(rng, 8, 250),
                        "stock": rng.randrange(0, 30),
                    }
                )
    rows["orders"] = []
    for o in ids("O", 60):
        p = rng.choice(rows["products"])
        q = rng.randrange(1, 4)
        rows["orders"].append(
            {
                "order_id": o,
                "customer_id": rng.choice(rows["customers"])["customer_id"],
                "product_id": p["product_id"],
                "quantity": q,
                "total": round(p["price"] * q, 2),
                "status": rng.choice(["placed", "placed", "shipped", "delivered", "cancelled"]),
            }
        )
    return DomainSpec(
        name="ecommerce",
        description="An online shop: catalogue, stock, orders.",
        tables=[customers, products, orders],
        tools=tools,
    ), rows
