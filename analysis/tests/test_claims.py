"""Claims: the numbers an answer states, matched against what the run computed (analysis/claims.py)."""

from __future__ import annotations

import pytest

from analysis.claims import ValuePool, claim_mentions, claim_source_label, claims_match, mentions_in


def _pool(final_result=None, *, stdout: str = "", table: tuple[list, list] | None = None) -> ValuePool:
    pool = ValuePool()
    if final_result is not None:
        pool.add_final_result(final_result, step=2)
    if stdout:
        pool.add_stdout(stdout, step=3)
    if table:
        pool.add_table(columns=table[0], rows=table[1], step=4, title="Revenue by region", label_columns=1)
    return pool


def _claim(answer: str, pool: ValuePool, question: str = "") -> dict:
    (claim,) = claims_match(answer=answer, question=question, pool=pool)
    return claim


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1,234,567", 1234567),
        ("196,817.88", 196817.88),
        ("-12.5", -12.5),
        ("−3.2", -3.2),  # a typographic minus
        ("19.7%", 0.197),
        ("12 percent", 0.12),
        ("$4.5", 4.5),
        ("€1,200", 1200),
        ("1.2k", 1200),
        ("3.4M", 3_400_000),
        ("2.5 billion", 2_500_000_000),
        ("£3bn", 3_000_000_000),
        ("0.75", 0.75),
    ],
)
def test_numbers_are_read_in_every_common_format(text, value):
    (mention,) = mentions_in(f"It was {text} last time.")

    assert mention.text == text
    assert mention.value == pytest.approx(value)


@pytest.mark.parametrize(
    "text",
    [
        "on 2024-03-05",
        "at 2024-03-05T10:15:00",
        "on 03/05/2024",
        "at 14:30",
        "on March 5, 2024",
        "on 5 March 2024",
        "in Jan 2024",
        "in Q1 2024",
        "for FY2024",
        "see https://example.org/report/42",
        "in column col2",
        "the 1st region",
    ],
)
def test_dates_times_urls_and_words_with_digits_are_not_numbers(text):
    assert mentions_in(f"It happened {text}.") == []


def test_years_list_markers_and_numbers_from_the_question_are_not_claims():
    answer = "In 2024 the top 5 regions were:\n1. West with 1,500\n2. East with 900"

    claims = claim_mentions(answer, question="What were the top 5 regions in 2024?")

    assert [m.text for m in claims] == ["1,500", "900"]


def test_a_rounded_number_matches_the_precise_value_it_rounds():
    claim = _claim("Revenue was 196,817.88.", _pool({"revenue": 196817.8812}))

    assert claim["verified"] is True
    assert claim["computed"] == pytest.approx(196817.8812)
    assert claim["location"] == {"path": ["revenue"]}


def test_a_number_rounded_the_wrong_way_is_not_verified():
    claim = _claim("Revenue was 196,817.90.", _pool({"revenue": 196817.8812}))

    assert claim["verified"] is False
    assert claim["step"] is None and claim["source"] is None


def test_a_percentage_matches_a_fraction_or_a_value_already_in_percent():
    fraction = _claim("West has 19.7% of revenue.", _pool({"share": 0.1973}))
    percent = _claim("West has 19.7% of revenue.", _pool({"share": 19.73}))

    assert fraction["verified"] and percent["verified"]


def test_an_abbreviated_number_matches_at_its_scale():
    claim = _claim("About 1.2M orders.", _pool({"orders": 1_234_567}))

    assert claim["verified"] is True
    assert claim["value"] == 1_200_000


def test_an_abbreviation_does_not_match_at_the_wrong_scale():
    claim = _claim("About 1.2k orders.", _pool({"orders": 1_234_567}))

    assert claim["verified"] is False


def test_an_unsigned_number_matches_a_fall_but_a_signed_one_keeps_its_sign():
    pool = _pool({"change": -0.123})

    fell = _claim("Revenue fell by 12.3%.", pool)
    rose = _claim("Revenue changed by +12.3%.", pool)

    assert fell["verified"] is True
    assert rose["verified"] is False


def test_a_table_cell_is_located_by_row_and_column():
    table = (["region", "revenue"], [["East", 812.5], ["West", 1490.0]])

    claim = _claim("West made 1,490.", _pool(table=table))

    assert claim["source"] == "table"
    assert claim["step"] == 4
    assert claim["location"] == {"row": 1, "column": "revenue", "label": "West", "table": "Revenue by region"}


def test_printed_output_is_located_by_line():
    claim = _claim("The mean is 47.38.", _pool(stdout="rows: 24\nmean: 47.375\n"))

    assert claim["source"] == "stdout"
    assert claim["location"] == {"line": 2}


def test_final_result_is_preferred_over_a_table_and_printed_output_holding_the_same_number():
    pool = _pool({"total": 1490.0}, stdout="1490.0", table=(["region", "revenue"], [["West", 1490.0]]))

    claim = _claim("Total 1,490.", pool)

    assert claim["source"] == "final_result"


def test_an_exact_value_is_preferred_over_one_that_only_rounds_to_the_text():
    pool = _pool({"approx": 2.6}, table=(["region", "n"], [["West", 3]]))

    claim = _claim("There are 3 stores.", pool)

    assert claim["source"] == "table"


def test_a_number_from_a_small_group_carries_a_warning():
    pool = ValuePool()
    pool.add_table(
        columns=["region", "mean"],
        rows=[["East", 12.25], ["West", 40.5]],
        step=5,
        label_columns=1,
        group_sizes={"levels": 1, "sizes": {"East": 12, "West": 480}},
    )

    east, west = claims_match(answer="East averaged 12.25 and West 40.5.", question="", pool=pool)

    assert east["warning"] == "based on 12 rows"
    assert "warning" not in west


def test_numbers_inside_strings_of_final_result_count():
    claim = _claim("It is 4,512.", _pool({"summary": "Total orders: 4,512"}))

    assert claim["verified"] is True


def test_invented_numbers_are_unverified_when_nothing_was_computed():
    assert _claim("Revenue grew 12%.", ValuePool())["verified"] is False


def test_source_labels_say_where_a_number_came_from():
    table = (["region", "revenue"], [["West", 1490.0]])
    claim = _claim("West made 1,490.", _pool(table=table))

    assert claim_source_label(claim) == "step 4, table “Revenue by region”, row West, column revenue"
    assert claim_source_label({"verified": False}) == "not found in any computed output"
