"""Each contract violation is rejected with an error naming the file, row and column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from earlywarn.data.validation import ContractError, load_validated, validate_features, validate_outcomes


def _features(**overrides) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "participant_id": ["a", "a", "b"],
            "date": ["2025-01-01", "2025-01-02", "2025-01-01"],
            "sleep_duration_h": [7.0, 6.5, np.nan],
            "steps": ["8000", "", "5000"],
            "my_custom_signal": [1.0, 2.0, 3.0],
        }
    )
    for col, values in overrides.items():
        df[col] = values
    return df


def _single(err: pytest.ExceptionInfo[ContractError]):
    assert err.value.total == 1, str(err.value)
    return err.value.problems[0]


def test_valid_table_is_typed_and_keeps_custom_features():
    df = validate_features(_features(), source="f.csv")
    assert list(df.columns) == ["participant_id", "date", "sleep_duration_h", "steps", "my_custom_signal"]
    assert df["steps"].dtype == np.float32 and np.isnan(df["steps"].iloc[1])
    assert str(df["date"].dtype).startswith("datetime64")


def test_duplicate_participant_day():
    df = _features(date=["2025-01-01", "2025-01-01", "2025-01-01"])
    with pytest.raises(ContractError) as err:
        validate_features(df, source="f.csv")
    p = _single(err)
    assert (p.source, p.row) == ("f.csv", 2) and "duplicate participant-day" in str(p) and "a on 2025-01-01" in str(p)


def test_unparsable_date():
    with pytest.raises(ContractError) as err:
        validate_features(_features(date=["2025-01-01", "2025-13-01", "2025-01-01"]), source="f.csv")
    p = _single(err)
    assert (p.row, p.column) == (2, "date") and "'2025-13-01'" in str(p)


def test_non_numeric_feature_value():
    with pytest.raises(ContractError) as err:
        validate_features(_features(steps=["8000", "lots", "5000"]), source="f.csv")
    p = _single(err)
    assert (p.row, p.column) == (2, "steps") and "non-numeric" in p.message and "'lots'" in p.message


def test_out_of_range_standard_feature():
    with pytest.raises(ContractError) as err:
        validate_features(_features(sleep_duration_h=[7.0, 30.0, np.nan]), source="f.csv")
    p = _single(err)
    assert (p.row, p.column) == (2, "sleep_duration_h") and "0–24" in p.message and "got 30" in p.message


def test_custom_features_have_no_range_but_must_be_finite():
    validate_features(_features(my_custom_signal=[1e9, -5.0, 0.0]))
    with pytest.raises(ContractError) as err:
        validate_features(_features(my_custom_signal=[1.0, np.inf, 0.0]))
    assert _single(err).message == "infinite value"


def test_missing_key_column_and_missing_id():
    with pytest.raises(ContractError, match="required column"):
        validate_features(_features().drop(columns=["date"]))
    with pytest.raises(ContractError) as err:
        validate_features(_features(participant_id=["a", " ", "b"]))
    assert _single(err).column == "participant_id"


def test_outcomes_for_unknown_participant(tmp_path):
    f, o = tmp_path / "features.csv", tmp_path / "outcomes.csv"
    _features().to_csv(f, index=False)
    pd.DataFrame({"participant_id": ["a", "zz"], "date": ["2025-01-05", "2025-01-06"], "event": ["relapse"] * 2}).to_csv(
        o, index=False
    )
    with pytest.raises(ContractError) as err:
        load_validated(f, o)
    p = _single(err)
    assert (p.source, p.row, p.column) == (str(o), 2, "participant_id") and "'zz'" in str(p)


def test_outcome_shapes_and_label_values():
    events = validate_outcomes(pd.DataFrame({"participant_id": ["a"], "date": ["2025-01-03"], "event": ["relapse"]}))
    assert list(events.columns) == ["participant_id", "date", "event"]
    labels = validate_outcomes(pd.DataFrame({"participant_id": ["a", "b"], "date": ["2025-01-03"] * 2, "label": ["True", "0"]}))
    assert labels["label"].tolist() == [1, 0]
    with pytest.raises(ContractError) as err:
        validate_outcomes(pd.DataFrame({"participant_id": ["a"], "date": ["2025-01-03"], "label": ["maybe"]}), source="o.csv")
    assert (_single(err).row, _single(err).column) == (1, "label")
    with pytest.raises(ContractError, match="exactly one of"):
        validate_outcomes(pd.DataFrame({"participant_id": ["a"], "date": ["2025-01-03"]}))


def test_every_problem_is_reported_not_just_the_first():
    df = _features(steps=["x", "y", "5000"], sleep_duration_h=[-1.0, 7.0, 7.0])
    with pytest.raises(ContractError) as err:
        validate_features(df)
    assert err.value.total == 3
    assert {(p.row, p.column) for p in err.value.problems} == {(1, "steps"), (2, "steps"), (1, "sleep_duration_h")}


def test_parquet_round_trip(tmp_path):
    path = tmp_path / "f.parquet"
    validate_features(_features()).to_parquet(path)
    assert len(load_validated(path).features) == 3


def test_one_pass_lists_duplicates_and_outcome_problems_beside_bad_values(tmp_path):
    """What `earlywarn data validate` prints for a table with a bad value, a duplicate participant-day and an outcome
    for an unknown person: all three kinds in one run, with file rows (they once surfaced one round at a time)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    rows = [("a", f"2025-01-{d:02d}", "7.0") for d in range(1, 29)] + [("b", "2025-01-01", "8.0")]
    rows[3] = ("a", "2025-01-04", "seven")  # row 4: non-numeric
    rows.append(("a", "2025-01-10", "7.5"))  # row 30: duplicate of row 10
    features = tmp_path / "features.csv"
    features.write_text("participant_id,date,sleep_duration_h\n" + "\n".join(",".join(r) for r in rows) + "\n")
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text("participant_id,date,event\na,2025-01-20,relapse\nghost,2025-01-05,relapse\n")
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("earlywarn")),
            "data",
            "validate",
            "--features",
            str(features),
            "--outcomes",
            str(outcomes),
        ],
        env=os.environ | {"EARLYWARN_HOME": str(tmp_path / "state")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "3 contract violation(s)" in done.stderr, done.stderr
    assert "row 4, column 'sleep_duration_h': non-numeric value (got 'seven')" in done.stderr
    assert "row 30: duplicate participant-day (a on 2025-01-10 appears more than once)" in done.stderr
    assert "outcomes.csv, row 2, column 'participant_id': outcome for an unknown participant" in done.stderr


def test_every_kind_of_problem_is_shown_when_one_kind_has_many_rows():
    df = pd.concat([_features()] * 30, ignore_index=True)
    df["participant_id"] = [f"p{i}" for i in range(len(df))]
    df["steps"] = "x"  # 90 non-numeric values
    df.loc[89, ["participant_id", "date"]] = df.loc[88, ["participant_id", "date"]]  # and one duplicate, after them
    with pytest.raises(ContractError) as err:
        validate_features(df)
    assert err.value.total == 91 and "duplicate participant-day" in str(err.value)
