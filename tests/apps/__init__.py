"""Small Flask apps written the way real Flask-SQLAlchemy apps are, each with patterns my_app lacks.

The toolkit promises to work on the user's app, not only ours, so the tests run the whole
Workbench surface over each of these (tests/test_apps.py):

``shop``     classic ``db.Model``; a column named unlike its attribute (``_password`` stored as
             ``password``); a reserved word (``order``) and a mixed-case name
             (``ProductCatalog``) as table names; a composite primary key; an association
             ``db.Table``; a table with no model; a factory that can run only once per process.
``zoo``      ``DeclarativeBase`` with ``Mapped[...]`` columns; single-table and joined-table
             inheritance; a factory taking a config name (``create_app('testing')``).
``vault``    a module exposing a built ``app`` (``db = SQLAlchemy(app)``), no factory;
             ``PickleType`` and a ``TypeDecorator`` that encodes text (base64, standing for
             encryption) in ``process_bind_param`` / ``process_result_value``.
``binds``    ``SQLALCHEMY_BINDS``: models and a plain table on a second database, possibly of
             another kind than the default one.
``schemas``  a table in another PostgreSQL schema (a MariaDB database) through
             ``__table_args__ = {"schema": ...}``.

Every app reads its database URL(s) from the environment (``<APP>_SQLALCHEMY_DATABASE_URI``,
Flask's ``from_prefixed_env``), so tests point it at a private SQLite file, PostgreSQL schema or
MariaDB database, and has a ``flask seed`` command that creates its tables and a few
deterministic rows.
"""
