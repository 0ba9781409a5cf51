"""A shop in the classic Flask-SQLAlchemy style, with the naming habits of older schemas.

* classic ``db.Model`` classes with ``db.Column`` attributes;
* ``Customer._password`` is stored in the column ``password`` (a write-only ``password``
  property hashes what is assigned), and ``Product.sku`` in the column ``SKU``;
* the table names ``order`` (a reserved word) and ``ProductCatalog`` (mixed case);
* ``order_lines`` has a composite primary key (``order_id``, ``line_no``);
* ``product_tags`` is an association ``db.Table``; ``audit_log`` is a table with no model;
* the factory runs only once per process: the blueprint is created at module level and its
  routes are added inside ``create_app``, so a second call makes Flask refuse
  (``The setup method 'route' can no longer be called on the blueprint``), as in many apps.

Configuration: ``SHOP_SQLALCHEMY_DATABASE_URI`` (Flask's ``from_prefixed_env``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import typing as t

import click
from flask import Blueprint, Flask, jsonify
from flask.cli import with_appcontext
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
bp = Blueprint("shop", __name__)

product_tags = db.Table(
    "product_tags",
    db.Column("product_id", db.Integer, db.ForeignKey("ProductCatalog.id"), primary_key=True),
    db.Column("tag_id", db.Integer, db.ForeignKey("tags.id"), primary_key=True),
)

audit_log = db.Table(
    "audit_log",
    db.Column("id", db.Integer, primary_key=True, autoincrement=False),
    db.Column("action", db.String(40), nullable=False),
    db.Column("logged_at", db.DateTime, nullable=False),
)


class Customer(db.Model):
    __tablename__ = "customers"

    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(120), unique=True, nullable=False)
    _password = db.Column("password", db.String(64), nullable=False)
    orders = db.relationship("Order", back_populates="customer")

    @property
    def password(self) -> str:
        raise AttributeError("the password is write-only")

    @password.setter
    def password(self, value: str) -> None:
        self._password = hashlib.sha256(value.encode()).hexdigest()


class Order(db.Model):
    __tablename__ = "order"

    id = db.Column(db.Integer, primary_key=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id"), nullable=False)
    placed_at = db.Column(db.DateTime, nullable=False)
    status = db.Column(db.String(20), nullable=False, default="open")
    customer = db.relationship("Customer", back_populates="orders")
    lines = db.relationship("OrderLine", back_populates="order")


class OrderLine(db.Model):
    __tablename__ = "order_lines"

    order_id = db.Column(db.Integer, db.ForeignKey("order.id"), primary_key=True)
    line_no = db.Column(db.Integer, primary_key=True)
    product_id = db.Column(db.Integer, db.ForeignKey("ProductCatalog.id"), nullable=False)
    quantity = db.Column(db.Integer, nullable=False)
    price = db.Column(db.Numeric(10, 2), nullable=False)
    order = db.relationship("Order", back_populates="lines")


class Product(db.Model):
    __tablename__ = "ProductCatalog"

    id = db.Column(db.Integer, primary_key=True)
    sku = db.Column("SKU", db.String(20), unique=True, nullable=False)
    name = db.Column(db.String(80), nullable=False)
    tags = db.relationship("Tag", secondary=product_tags, back_populates="products")


class Tag(db.Model):
    __tablename__ = "tags"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(40), unique=True, nullable=False)
    products = db.relationship("Product", secondary=product_tags, back_populates="tags")


def create_app(test_config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(SECRET_KEY="dev", SQLALCHEMY_DATABASE_URI="sqlite:///shop.sqlite")
    app.config.from_prefixed_env("SHOP")
    if test_config:
        app.config.update(test_config)
    db.init_app(app)

    # Routes added to the module-level blueprint here: the second call of create_app in a
    # process fails, because Flask refuses new routes on a blueprint already registered.
    @bp.route("/orders/<int:order_id>")
    def order(order_id: int) -> t.Any:
        found = db.get_or_404(Order, order_id)
        return jsonify(id=found.id, status=found.status, lines=len(found.lines))

    app.register_blueprint(bp)
    app.cli.add_command(seed_command)
    return app


@click.command("seed")
@with_appcontext
def seed_command() -> None:
    """Create the tables and a few deterministic rows."""
    db.create_all()
    seed()
    click.echo("seeded")


def seed() -> None:
    tags = [Tag(id=1, name="red"), Tag(id=2, name="sale")]
    products = [
        Product(id=1, sku="A-1", name="Anvil", tags=tags),
        Product(id=2, sku="B-2", name="Bucket", tags=[tags[0]]),
        Product(id=3, sku="C-3", name="Crate, large", tags=[tags[1]]),
    ]
    customers = []
    for i, email in enumerate(["ann@example.com", "bob@example.com", "cy@example.com"], start=1):
        customer = Customer(id=i, email=email)
        customer.password = f"secret-{i}"
        customers.append(customer)
    base = dt.datetime(2026, 1, 5, 9, 30)
    orders = [
        Order(id=1, customer=customers[0], placed_at=base, status="paid"),
        Order(id=2, customer=customers[0], placed_at=base + dt.timedelta(days=1, seconds=1.5), status="open"),
        Order(id=3, customer=customers[1], placed_at=base + dt.timedelta(days=2), status="shipped"),
    ]
    lines = [
        OrderLine(order=orders[0], line_no=1, product_id=1, quantity=1, price=decimal.Decimal("99.90")),
        OrderLine(order=orders[0], line_no=2, product_id=2, quantity=3, price=decimal.Decimal("4.50")),
        OrderLine(order=orders[1], line_no=1, product_id=3, quantity=2, price=decimal.Decimal("12.00")),
        OrderLine(order=orders[2], line_no=1, product_id=1, quantity=1, price=decimal.Decimal("95.00")),
        OrderLine(order=orders[2], line_no=2, product_id=3, quantity=10, price=decimal.Decimal("11.25")),
    ]
    db.session.add_all([*tags, *products, *customers, *orders, *lines])
    db.session.execute(
        audit_log.insert(),
        [
            {"id": 1, "action": "import", "logged_at": base - dt.timedelta(hours=1)},
            {"id": 2, "action": "=SUM(A1:A2)", "logged_at": base},
        ],
    )
    db.session.commit()
