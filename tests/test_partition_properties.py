"""Property tests for the SQL a partition carries to a worker: text with colons, backslashes and
quotes, and bound values of any text, come back as the same statement and the same rows."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.partitions.plan import AppRecipe, PartitionSpec, _compile, _named_dialect

pytestmark = pytest.mark.backends("sqlite")

ENGINE = sa.create_engine("sqlite://")
awkward = st.lists(st.sampled_from([*":\\'%ab_0 ?$", "::", ":a", "\\:", ":v"]), max_size=12).map("".join)


@settings(max_examples=200, deadline=None)
@given(literal=awkward, value=st.text(max_size=12), number=st.integers(-(2**40), 2**40))
def test_a_partition_statement_reads_what_the_query_reads(literal, value, number):
    quoted = "'" + literal.replace("'", "''") + "'"
    query = sa.select(
        sa.literal(value, sa.String).label("v"),
        sa.literal_column(quoted, sa.String).label("l"),
        (sa.literal(number, sa.Integer) + 1).label("n"),
    ).where(sa.literal(value, sa.String).in_([value, value + "x"]))
    inner = query.subquery("analysis_query")
    sql, bound = _compile(sa.select(*inner.c), {}, _named_dialect(ENGINE))
    spec = PartitionSpec(
        AppRecipe(), sql, bound, ("v", "l", "n"), (sa.String(), sa.String(), sa.Integer()), "numpy_nullable", None, 0
    )
    with ENGINE.connect() as conn:
        assert conn.execute(spec.statement()).one() == conn.execute(query).one() == (value, literal, number + 1)
