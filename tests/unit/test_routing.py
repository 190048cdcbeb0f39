from __future__ import annotations

import pytest

from domain.contracts import Catalog, contract_from_mapping
from domain.errors import ConfigurationError, UnroutableSheetError
from domain.routing import Router, RoutingRule, is_report_only_sheet, rules_from_config
from domain.sheet import SheetPreview

pytestmark = pytest.mark.unit

TRAIN = ("PassengerId", "Survived", "Pclass", "Name", "Sex", "Age",
         "SibSp", "Parch", "Ticket", "Fare", "Cabin", "Embarked")  # fmt: skip


def preview(*rows: tuple[str | None, ...], name: str = "Sheet1") -> SheetPreview:
    return SheetPreview(name, rows)


def test_header_matches_case_insensitively_trimmed_and_in_any_order(router: Router) -> None:
    header = tuple(f"  {c.upper()} " for c in reversed(TRAIN))
    decision = router.route("s3://b/x.xlsx", preview(header))
    assert decision.contract.name == "train_data"
    assert decision.positions[0] == 11  # PassengerId is the last column
    assert decision.header_row == 1


def test_aliases_are_honoured(router: Router) -> None:
    header = tuple("Class" if c == "Pclass" else c for c in TRAIN)
    assert router.route("x.csv", preview(header)).contract.name == "train_data"


def test_header_below_title_rows_is_found(router: Router) -> None:
    decision = router.route("x.xlsx", preview(("Titanic",), (None, None), ("Run 3", "x"), TRAIN))
    assert decision.header_row == 4


def test_trailing_blank_header_cells_are_ignored(router: Router) -> None:
    decision = router.route("x.xlsx", preview((*TRAIN, None, "  ")))
    assert decision.contract.name == "train_data"


def test_unroutable_names_closest_missing_and_extra(router: Router) -> None:
    header = (*tuple(c for c in TRAIN if c not in ("Age", "Fare")), "Notes")
    with pytest.raises(UnroutableSheetError) as raised:
        router.route("s3://b/x.xlsx", preview(header, name="Data"))
    error = raised.value
    assert "s3://b/x.xlsx [sheet Data]" in str(error)
    assert error.details["closest"] == "train_data"
    assert error.details["missing"] == ["Age", "Fare"]
    assert error.details["extra"] == ["Notes"]


def test_repeated_headers_differing_in_case_are_not_guessed(router: Router) -> None:
    with pytest.raises(UnroutableSheetError, match="repeated columns age"):
        router.route("x.xlsx", preview((*TRAIN, "age")))


def test_empty_sheet_is_unroutable(router: Router) -> None:
    with pytest.raises(UnroutableSheetError, match="no header row found"):
        router.route("x.xlsx", preview((None,), ()))


def test_rules_match_file_key_and_sheet_globs(catalog: Catalog) -> None:
    router = Router(
        catalog,
        [
            RoutingRule("gender_submission", key="incoming/kaggle/*", sheet="sub*"),
            RoutingRule("test_data", file="*.CSV"),
        ],
    )
    header = ("PassengerId", "Survived")
    assert (
        router.route(
            "s3://b/incoming/kaggle/a.xlsx", preview(header, name="Submission")
        ).contract.name
        == "gender_submission"
    )
    with pytest.raises(UnroutableSheetError, match="routing rule sends it to test_data"):
        router.route("s3://b/other/a.csv", preview(header))


def test_a_rule_naming_an_unknown_table_fails_at_start_up(catalog: Catalog) -> None:
    with pytest.raises(ConfigurationError, match="no contract for table 'nope'"):
        Router(catalog, [RoutingRule("nope")])


def test_an_ignore_rule_sets_matching_sheets_aside_and_the_first_matching_rule_wins(
    catalog: Catalog,
) -> None:
    router = Router(
        catalog,
        rules_from_config(
            [
                {"sheet": "Notes kept", "table": "gender_submission"},
                {"sheet": "Notes*", "ignore": True},
            ]
        ),
    )
    assert router.ignores("s3://b/a.xlsx", "NOTES from the clerk")
    assert not router.ignores("s3://b/a.xlsx", "Notes kept")
    assert not router.ignores("s3://b/a.xlsx", "Passengers")
    with pytest.raises(ValueError, match="ignored"):
        router.route("s3://b/a.xlsx", preview(TRAIN, name="Notes"))


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"sheet": "Notes*"}, "names no table"),
        ({"sheet": "Notes*", "ignore": False}, "names no table"),
        ({"sheet": "Notes*", "ignore": True, "table": "test_data"}, "names a table and ignore"),
        ({"sheet": "Notes*", "ignore": "yes"}, "ignore must be true or false"),
        ({"sheet": "Notes*", "ignored": True}, "unknown keys"),
    ],
)
def test_routing_rule_mistakes_stop_start_up(rule: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        rules_from_config([rule])


def test_a_preview_of_blank_cells_is_blank() -> None:
    assert preview((None, " "), (), ("\t",)).blank
    assert preview().blank
    assert not preview((None, "x")).blank


def test_a_rejects_reports_helper_columns_are_left_out(router: Router) -> None:
    decision = router.route("r.xlsx", preview(("source_row", *TRAIN, "datalakep_errors")))
    assert decision.contract.name == "train_data"
    assert decision.positions[0] == 1  # PassengerId, after source_row


def test_a_rejects_reports_summary_and_refused_sheets_hold_nothing_to_load() -> None:
    summary = preview(
        ("Source", "s3://b/x.xlsx"), ("Version", "v1"), ("Load id", "ab12"), ("Rejected rows", "3"),
        name="summary",
    )  # fmt: skip
    assert is_report_only_sheet(summary)
    assert is_report_only_sheet(preview(("source_row", "datalakep_errors"), name="Refused"))
    # A person's own sheet called summary is data like any other.
    assert not is_report_only_sheet(preview(("Source", "Total"), ("a", "1"), name="Summary"))
    assert not is_report_only_sheet(preview(("source_row", *TRAIN, "datalakep_errors")))
    assert not is_report_only_sheet(preview(name="summary"))


def test_a_repeated_header_label_routes_to_its_numbered_column() -> None:
    contract = contract_from_mapping(
        "t",
        {
            "load_mode": "append",
            "columns": [{"name": "name", "type": "varchar(9)"}, {"name": "Name_2", "type": "int"}],
        },
    )
    router = Router(Catalog({"t": contract}))
    assert router.route("x.csv", preview(("Name", "name"))).positions == (0, 1)
    with pytest.raises(UnroutableSheetError, match="repeated columns name"):
        router.route("x.csv", preview(("Name", "name", "name")))
