"""Parquet write -> read is the identity for every table schema (run tables, catalogue and truth), with
both codecs."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gaiasim.sim.truth import TRUTH_TABLES
from pipeline import schemas
from pipeline.io import HOT_CODEC, write_table

SCHEMAS = {**{f"run:{k}": v for k, v in schemas.RUN_TABLES.items()}, "catalogue": schemas.CATALOGUE,
           **{f"truth:{k}": v for k, v in TRUTH_TABLES.items()}}

_INTS = {pa.int8(): 8, pa.int16(): 16, pa.int32(): 32, pa.int64(): 64}


def _values(typ: pa.DataType) -> st.SearchStrategy:
    if typ in _INTS:
        bits = _INTS[typ]
        return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if typ == pa.float32():
        return st.floats(allow_nan=False, width=32)
    if typ == pa.float64():
        return st.floats(allow_nan=False)
    if typ == pa.bool_():
        return st.booleans()
    if typ == pa.string():
        return st.text(max_size=12)
    if typ == pa.binary():
        return st.binary(max_size=40)
    if pa.types.is_dictionary(typ):
        return st.sampled_from(["SM1", "SM2", "AF1", "AF9"])
    if pa.types.is_list(typ):
        return st.lists(_values(typ.value_type), max_size=5)
    raise NotImplementedError(f"no strategy for {typ}")


@st.composite
def tables(draw, schema: pa.Schema) -> pa.Table:
    n = draw(st.integers(0, 8))
    columns = {}
    for field in schema:
        values = _values(field.type)
        if field.nullable:
            values = st.none() | values
        columns[field.name] = draw(st.lists(values, min_size=n, max_size=n))
    return pa.table({f.name: pa.array(columns[f.name], type=f.type) for f in schema}, schema=schema)


@pytest.mark.parametrize("codec", ["zstd", HOT_CODEC])
@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_write_then_read_is_the_identity(name, codec, tmp_path_factory):
    schema = SCHEMAS[name]

    @given(tables(schema))
    def check(table):
        path = tmp_path_factory.mktemp("rt") / "t.parquet"
        write_table(table, schema, path, codec)
        back = pq.read_table(path, schema=schema)
        assert back.equals(table), f"{name}: read back differs"

    check()


def test_a_table_with_another_schema_is_refused(tmp_path):
    wrong = pa.table({"x": [1]})
    with pytest.raises(ValueError, match="does not match its schema"):
        write_table(wrong, schemas.GAPS, tmp_path / "gaps.parquet")
