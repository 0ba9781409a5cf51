"""Partitioned reads on Dask: any query as a ``dask.dataframe.DataFrame`` read by the workers.

>>> events = wb.dask(Event, npartitions=8)
>>> events.groupby("kind").amount.sum().compute()

The planner (:mod:`analysis.partitions.plan`, run where ``wb.dask()`` is called) splits the
query into ranges of the primary key or of ``partition_on``, computed in the database, so that
every row is in exactly one partition, and builds the meta (the dtypes) from the column plans
without reading data. Each partition is a :class:`~analysis.partitions.plan.PartitionSpec`: the
partition's SQL with its bound values and column types, how to reach the database, and the
snapshot to read in. A worker (:mod:`analysis.partitions.worker`) reads it through the toolkit's
read path (fast routes, the dtypes of ``frame()``, read-only) and closes its connections.

No credentials travel in the task graph: the worker rebuilds the app from its import string
(the one given to :func:`analysis.connect`), or reads the database URL from an environment
variable the user names (``url_env``); in the process that planned the read (Dask's threaded
scheduler), it reads with the Workbench's own engine.
"""

from __future__ import annotations

import typing as t

from .plan import AppRecipe, PartitionSpec, plan_partitions

if t.TYPE_CHECKING:
    import dask.dataframe as dd
    import sqlalchemy as sa

    from ..connections import AnySession
    from ..read.plans import DtypeBackend

__all__ = ["AppRecipe", "PartitionSpec", "plan_partitions", "read_dask"]


def read_dask(
    session: AnySession,
    query: t.Any,
    *,
    recipe: AppRecipe,
    npartitions: int | None = None,
    partition_on: str | None = None,
    params: t.Mapping[str, t.Any] | None = None,
    dtype_backend: DtypeBackend = "numpy_nullable",
    binds: t.Mapping[str | None, sa.Engine] | None = None,
) -> dd.DataFrame:
    """``query`` as a Dask DataFrame of ``npartitions`` partitions (see the module docstring)."""

    import dask.dataframe as dd

    from .worker import read_partition, register_local_engine

    plan = plan_partitions(
        session, query, recipe=recipe, npartitions=npartitions, partition_on=partition_on, params=params,
        dtype_backend=dtype_backend, binds=binds,
    )
    if recipe.local_token:
        register_local_engine(recipe.local_token, plan.engine)
    return dd.from_map(  # type: ignore[no-untyped-call]
        read_partition, plan.specs, meta=plan.meta, divisions=None, label="analysis-read",
        enforce_metadata=False,
    )

