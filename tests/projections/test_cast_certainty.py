"""The typed-column check's shortcut (``statements.CERTAINLY_CONVERTS``): a value's text that the shortcut
calls certain must convert to its column's type, so ``cast_problem`` gives exactly what the subtransaction of
``projection_cast_error`` gives for every text, tricky or random; and the texts JSON values usually have do
take the shortcut (else the typed projection pays a subtransaction per value again)."""

from __future__ import annotations

import random
import uuid

import pytest

from sluice.core.errors import ProjectionTargetError
from sluice.services.projections.sql_target.definition import COLUMN_TYPES
from sluice.services.projections.sql_target.statements import CERTAINLY_CONVERTS, cast_problem
from sluice.storage.postgres.store import PostgresEventStore

pytestmark = pytest.mark.postgres

TRICKY = [
    "",
    " ",
    "-",
    "+",
    ".",
    "-.",
    "+.",
    "..",
    "0",
    "00",
    "-0",
    "+0",
    "1",
    "-1",
    "+1",
    " 1",
    "1 ",
    "1-",
    "--1",
    "1.",
    ".5",
    "1.5",
    "1.2.3",
    "1e5",
    "1E5",
    "1e",
    "e5",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "9" * 9,
    "9" * 10,
    "2147483647",
    "2147483648",
    "-2147483648",
    "-2147483649",
    "9" * 18,
    "9" * 19,
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "0x1F",
    "0b101",
    "0o17",
    "1_000",
    "١٢٣",  # PostgreSQL 16 reads some of these; 15 does not
    "9" * 1000,
    "9" * 1001,
    "1." + "9" * 998,
    "9" * 131072,
    "." + "9" * 16383,
    "." + "9" * 16384,
    "true",
    "false",
    "TRUE",
    "False",
    "t",
    "f",
    "tr",
    "yes",
    "no",
    "y",
    "n",
    "on",
    "off",
    "of",
    "1 ",
    " true",
    "truee",
    "ye",
    "o",
    str(uuid.UUID(int=0)),
    str(uuid.uuid4()),
    str(uuid.uuid4()).upper(),
    "{" + str(uuid.uuid4()) + "}",
    uuid.uuid4().hex,
    "a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11",
    "a0eebc999c0b-4ef8-bb6d-6bb9bd380a11",
    "a0eebc9-99c0b-4ef8-bb6d-6bb9bd380a11",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g",
    "--------" + "0" * 28,
    "a0eebc99-9c0b-4ef8-bb6d6-bb9bd380a11",
    "a0eebc99-9c0b-4ef8-bb6d6b-b9bd380a11",
    "a0eebc99-9c0b-4ef8-bb6d6bb9b-d380a11",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
    "2026-12-08T01:02:03Z",
    "2026-02-30T00:00:00Z",
    "2026-12-08",
    "now",
    "epoch",
    "infinity",
    '"1"',
    "[1]",
    "{}",
    "null",
]
ALPHABET = "0123456789abcdefABCDEF-+. eEtruflsnoyx{}:TZ"


def random_texts(count: int) -> list[str]:
    generator = random.Random(20261208)
    texts = []
    for _ in range(count):
        length = generator.choice([1, 2, 3, 5, 9, 10, 18, 19, 20, 36, 37])
        texts.append("".join(generator.choice(ALPHABET) for _ in range(length)))
        # Near-canonical forms: one character of a valid value changed.
        valid = generator.choice([str(uuid.UUID(int=generator.getrandbits(128))), str(generator.getrandbits(60))])
        position = generator.randrange(len(valid))
        texts.append(valid[:position] + generator.choice(ALPHABET) + valid[position + 1 :])
    return texts


@pytest.mark.parametrize("column_type", [column_type for column_type in COLUMN_TYPES if column_type != "text"])
async def test_the_shortcut_never_changes_the_answer(postgres_store: PostgresEventStore, column_type: str) -> None:
    texts = [*TRICKY, *random_texts(3000)]
    async with postgres_store.acquire() as connection:
        rows = await connection.fetch(
            f"SELECT text, {cast_problem('text', column_type)} AS shortcut, "
            f"projection_cast_error(text, '{column_type}') AS exact FROM unnest($1::text[]) AS text",
            [*texts, None],
        )
    assert len(rows) == len(texts) + 1
    differing = [(row["text"], row["shortcut"], row["exact"]) for row in rows if row["shortcut"] != row["exact"]]
    assert differing == []
    assert rows[-1]["shortcut"] is None  # no value: nothing to convert


@pytest.mark.parametrize("column_type", sorted(CERTAINLY_CONVERTS))
async def test_certain_texts_convert_and_the_usual_ones_are_certain(
    postgres_store: PostgresEventStore, column_type: str
) -> None:
    usual = {
        "bigint": ["0", "1250", "9" * 18],
        "integer": ["0", "42", "9" * 9],
        "numeric": ["0", "12.5", "1.", ".5", "9" * 999],
        "boolean": ["true", "false"],
        "uuid": [str(uuid.uuid4()) for _ in range(3)],
    }[column_type]
    certain = CERTAINLY_CONVERTS[column_type].format(text="text")
    async with postgres_store.acquire() as connection:
        rows = await connection.fetch(
            f"SELECT text, ({certain}) AS certain, projection_cast_error(text, '{column_type}') AS exact "
            "FROM unnest($1::text[]) AS text",
            [*usual, *TRICKY, *random_texts(1000)],
        )
    certain_but_failing = [(row["text"], row["exact"]) for row in rows if row["certain"] and row["exact"] is not None]
    assert certain_but_failing == []
    assert [row["text"] for row in rows[: len(usual)] if not row["certain"]] == []


def test_only_known_types_reach_the_sql() -> None:
    assert set(CERTAINLY_CONVERTS) <= set(COLUMN_TYPES)
    with pytest.raises(ProjectionTargetError, match="unknown column type"):
        cast_problem("text", "bigint; DROP TABLE x")
