"""The deterministic graders (string_check, text_similarity, json_check, regex_check), metrics and registry."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.errors import Invalid
from app.evals.graders import GRADER_TYPES, grade, grader_needs_model, make_sample, validate_grader
from app.evals.graders import regex_check as regex_check_module
from app.evals.graders.registry import validate_testing_criteria
from app.evals.graders.similarity import bleu, fuzzy_match, gleu, lcs_length, rouge_l, rouge_n

ITEM = {"answer": "Paris", "reference": "the cat sat on the mat"}


def run(config: dict, output: str, item: dict | None = None):
    """Validate a grader config as the eval would, then grade one output with it."""
    return grade(validate_grader(config, 0), item or ITEM, make_sample(output))


def string_check(operation: str) -> dict:
    return {
        "type": "string_check",
        "name": "capital",
        "input": "{{sample.output_text}}",
        "reference": "{{item.answer}}",
        "operation": operation,
    }


@pytest.mark.parametrize(
    ("operation", "output", "passed"),
    [
        ("eq", "Paris", True),
        ("eq", "paris", False),
        ("eq", "Paris.", False),
        ("ne", "Lyon", True),
        ("ne", "Paris", False),
        ("like", "The capital is Paris.", True),  # like: the input contains the reference
        ("like", "the capital is paris.", False),  # … case-sensitively
        ("ilike", "THE CAPITAL IS PARIS.", True),  # ilike: contains, ignoring case
        ("ilike", "Lyon", False),
    ],
)
def test_string_check_follows_openais_operations(operation, output, passed):
    result = run(string_check(operation), output)
    assert (result.passed, result.score, result.error) == (passed, 1.0 if passed else 0.0, None)
    assert (result.name, result.type) == ("capital", "string_check")
    assert result.details["reference"] == "Paris"


# Hand-computed: candidate "the cat is on the mat" against "the cat sat on the mat".
# n-gram precisions 5/6, 3/5, 1/4 and 0/3 (smoothed to 1/(2·3)): BLEU = (5/6 · 3/5 · 1/4 · 1/6)^(1/4) = 48^(-1/4).
CANDIDATE, REFERENCE = "the cat is on the mat", "the cat sat on the mat"


def test_bleu_against_a_hand_computed_value():
    assert bleu(CANDIDATE, REFERENCE) == pytest.approx(48**-0.25)  # 0.3799
    assert bleu(REFERENCE, REFERENCE) == 1.0


def test_bleu_brevity_penalty_and_effective_order():
    # Two tokens, both matching, as unigram and bigram: precision 1, brevity penalty exp(1 - 6/2).
    assert bleu("the cat", REFERENCE) == pytest.approx(math.exp(-2))
    assert bleu("dog", REFERENCE) == 0.0
    assert bleu("", REFERENCE) == 0.0


def test_gleu_is_the_lesser_of_pooled_precision_and_recall():
    # Matches 5 + 3 + 1 + 0 = 9 of 6 + 5 + 4 + 3 = 18 n-grams on either side.
    assert gleu(CANDIDATE, REFERENCE) == pytest.approx(0.5)
    # "the cat": 3 matched n-grams of its 3, of the reference's 18.
    assert gleu("the cat", REFERENCE) == pytest.approx(3 / 18)


def test_rouge_f_measures_against_hand_computed_values():
    assert rouge_n(CANDIDATE, REFERENCE, 1) == pytest.approx(5 / 6)
    assert rouge_n(CANDIDATE, REFERENCE, 2) == pytest.approx(3 / 5)
    assert rouge_n(CANDIDATE, REFERENCE, 3) == pytest.approx(1 / 4)
    assert rouge_n(CANDIDATE, REFERENCE, 4) == 0.0
    assert rouge_l(CANDIDATE, REFERENCE) == pytest.approx(5 / 6)  # "the cat on the mat"
    # Precision 1, recall 2/3: F = 2 · (2/3) / (5/3) = 0.8. Case and punctuation don't count.
    assert rouge_n("The CAT!", "the cat sat", 1) == pytest.approx(0.8)
    assert rouge_l("", REFERENCE) == 0.0


def test_fuzzy_match_is_rapidfuzz_ratio():
    # LCS("kitten", "sitting") = "ittn": 2 · 4 / 13, rapidfuzz's fuzz.ratio 61.54.
    assert fuzzy_match("kitten", "sitting") == pytest.approx(8 / 13)
    assert fuzzy_match("", "") == 1.0
    assert fuzzy_match("abc", "") == 0.0


def lcs_by_table(a: str, b: str) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        previous_diagonal = 0
        for j, y in enumerate(b, 1):
            previous_diagonal, row[j] = row[j], previous_diagonal + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


@given(st.text(alphabet="abc", max_size=30), st.text(alphabet="abc", max_size=30))
def test_bit_parallel_lcs_equals_the_textbook_table(a, b):
    assert lcs_length(a, b) == lcs_by_table(a, b)


@pytest.mark.parametrize(
    ("metric", "threshold", "passed"),
    [("bleu", 0.3, True), ("bleu", 0.4, False), ("rouge_1", 0.8, True), ("rouge_l", 0.9, False), ("gleu", 0.5, True)],
)
def test_text_similarity_passes_at_the_threshold_or_above(metric, threshold, passed):
    config = {
        "type": "text_similarity",
        "name": "close",
        "input": "{{sample.output_text}}",
        "reference": "{{item.reference}}",
        "evaluation_metric": metric,
        "pass_threshold": threshold,
    }
    result = run(config, CANDIDATE)
    assert result.passed is passed
    assert result.details == {"pass_threshold": threshold}


def test_text_similarity_fuzzy_match_score():
    config = {
        "type": "text_similarity",
        "name": "fuzzy",
        "input": "{{sample.output_text}}",
        "reference": "sitting",
        "evaluation_metric": "fuzzy_match",
        "pass_threshold": 0.6,
    }
    result = run(config, "kitten")
    assert result.score == pytest.approx(0.6154, abs=1e-4)
    assert result.passed


def json_check(**fields) -> dict:
    return {"type": "json_check", "name": "shape", **fields}


PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name"],
}


def test_json_check_accepts_fenced_json_with_the_keys_and_the_schema():
    result = run(json_check(required_keys=["name"], schema=PERSON), '```json\n{"name": "Ada", "age": 36}\n```')
    assert (result.passed, result.score, result.error) == (True, 1.0, None)


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("Ada, 36", "Not JSON"),
        ("[1, 2]", "Not a JSON object, so none of the required keys: name"),
        ('{"age": 36}', "Missing keys: name"),
        ('{"name": "Ada", "age": "old"}', "At $.age: 'old' is not of type 'integer'"),
        ('{"name": "Ada", "age": -1}', "At $.age: -1 is less than the minimum of 0"),
    ],
)
def test_json_check_fails_and_says_why(output, reason):
    result = run(json_check(required_keys=["name"], schema=PERSON), output)
    assert (result.passed, result.score, result.error) == (False, 0.0, None)
    assert result.details["reason"].startswith(reason)


def test_json_check_without_keys_or_schema_only_parses():
    assert run(json_check(), "3").passed
    assert not run(json_check(), "three").passed
    assert validate_grader(json_check(), 0)["input"] == "{{sample.output_text}}"


def test_json_check_schema_refs_stay_inside_the_schema():
    local = {"$defs": {"n": {"type": "integer"}}, "properties": {"n": {"$ref": "#/$defs/n"}}}
    assert not run(json_check(schema=local), '{"n": "x"}').passed
    with pytest.raises(Invalid, match="would be fetched") as caught:
        validate_grader(json_check(schema={"$ref": "https://example.com/schema.json"}), 1)
    assert caught.value.param == "testing_criteria[1].schema"


@pytest.mark.parametrize(
    "schema",
    [{"type": "nope"}, {"properties": {"a": {"pattern": "(a+)+$"}}}, {"patternProperties": {"(x*)*": {}}}, []],
)
def test_json_check_refuses_a_bad_or_unsafe_schema(schema):
    with pytest.raises(Invalid) as caught:
        validate_grader(json_check(schema=schema), 0)
    assert caught.value.param == "testing_criteria[0].schema"


def regex_check(pattern: str, **fields) -> dict:
    return {"type": "regex_check", "name": "format", "pattern": pattern, **fields}


@pytest.mark.parametrize(
    ("config", "output", "passed"),
    [
        (regex_check(r"\d{4}-\d{2}-\d{2}"), "It was 2024-05-01.", True),  # search is the default
        (regex_check(r"\d{4}-\d{2}-\d{2}", operation="match"), "It was 2024-05-01.", False),  # match: the whole input
        (regex_check(r"\d{4}-\d{2}-\d{2}", operation="match"), "2024-05-01", True),
        (regex_check("sorry", operation="not_search"), "Here you are.", True),
        (regex_check("sorry", operation="not_search"), "I'm sorry.", False),
        (regex_check("paris"), "PARIS", False),
        (regex_check("paris", flags="i"), "PARIS", True),
        (regex_check("^b$"), "a\nb", False),
        (regex_check("^b$", flags="m"), "a\nb", True),
        (regex_check("a.b", operation="match"), "a\nb", False),
        (regex_check("a.b", operation="match", flags="s"), "a\nb", True),
        (regex_check("^answer: (yes|no)$", flags="im"), "Reasoning…\nANSWER: Yes", True),
    ],
)
def test_regex_check_operations_and_flags(config, output, passed):
    result = run(config, output)
    assert (result.passed, result.error) == (passed, None)


def test_regex_check_reads_a_template_input_and_keeps_the_match():
    result = run(regex_check("^Paris$", input="{{item.answer}}"), "ignored")
    assert result.passed
    assert result.details == {"matched": "Paris"}


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("(a+)+$", "exponential time"),
        (r"^(\w+\s?)*$", "exponential time"),
        ("(x*){5}", "exponential time"),
        ("(", "Not a valid regular expression"),
        ("a" * 1001, "at most 1,000 characters"),
        ("", "can't be empty"),
    ],
)
def test_regex_check_refuses_slow_broken_or_huge_patterns(pattern, words):
    with pytest.raises(Invalid, match=words) as caught:
        validate_grader(regex_check(pattern), 3)
    assert caught.value.param == "testing_criteria[3].pattern"


@pytest.mark.parametrize("pattern", ["(ab)+", "a+b+", "(a{2})+", r"\(a+\)+", "[(a+)]+", "(a|b)*c", "((ab){2})+"])
def test_regex_check_accepts_patterns_without_a_nested_repeat(pattern):
    validate_grader(regex_check(pattern), 0)


def test_a_slow_pattern_the_scan_misses_ends_as_an_error_in_bounded_time(monkeypatch):
    monkeypatch.setattr(regex_check_module, "TIMEOUT_S", 0.05)
    result = run(regex_check("^(a|aa)+$"), "a" * 200 + "b")
    assert (result.passed, result.score) == (False, 0.0)
    assert result.error == "The pattern took longer than 0.05 s on this input."


@pytest.mark.parametrize("flags", ["x", "ii", "I", 1])
def test_regex_check_flags_are_i_m_s(flags):
    with pytest.raises(Invalid) as caught:
        validate_grader(regex_check("a", flags=flags), 0)
    assert caught.value.param == "testing_criteria[0].flags"


@pytest.mark.parametrize(
    ("config", "param", "words"),
    [
        ({"type": "regex", "name": "x"}, "testing_criteria[0].type", "use one of string_check, text_similarity"),
        ({"name": "x"}, "testing_criteria[0].type", "missing"),
        ({"type": "python", "name": "p", "source": "def grade(s, i): return 1"}, "testing_criteria[0].type", None),
        ({"type": "multi", "name": "m", "graders": {}, "calculate_output": "a"}, "testing_criteria[0].type", None),
        ("eq", "testing_criteria[0]", "grader"),
        ({**string_check("eq"), "operation": "equals"}, "testing_criteria[0].operation", "eq, ne, like, ilike"),
        ({k: v for k, v in string_check("eq").items() if k != "operation"}, "testing_criteria[0].operation", "needs"),
        ({**string_check("eq"), "threshold": 1}, "testing_criteria[0].threshold", "Unknown field 'threshold'"),
        ({**string_check("eq"), "name": " "}, "testing_criteria[0].name", "name"),
        ({**string_check("eq"), "input": 3}, "testing_criteria[0].input", "string"),
    ],
)
def test_validation_names_the_field_in_plain_words(config, param, words):
    with pytest.raises(Invalid) as caught:
        validate_grader(config, 0)
    assert caught.value.param == param
    if words is None:
        assert caught.value.message.startswith("No user code runs on the server")
    else:
        assert words in caught.value.message


def text_similarity(**fields) -> dict:
    config = {"type": "text_similarity", "name": "t", "input": "a", "reference": "b", "evaluation_metric": "bleu"}
    return {**config, "pass_threshold": 0.5, **fields}


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"evaluation_metric": "cosine"}, "evaluation_metric", "embeddings model"),
        ({"evaluation_metric": "meteor"}, "evaluation_metric", "WordNet"),
        ({"evaluation_metric": "rouge_9"}, "evaluation_metric", "rouge_l"),
        ({"pass_threshold": 1.5}, "pass_threshold", "at most 1"),
        ({"pass_threshold": True}, "pass_threshold", "number"),
    ],
)
def test_text_similarity_validation(fields, param, words):
    with pytest.raises(Invalid, match=words) as caught:
        validate_grader(text_similarity(**fields), 0)
    assert caught.value.param == f"testing_criteria[0].{param}"


def test_text_similarity_requires_a_pass_threshold_in_evals():
    config = text_similarity()
    del config["pass_threshold"]
    with pytest.raises(Invalid) as caught:
        validate_grader(config, 0)
    assert caught.value.param == "testing_criteria[0].pass_threshold"


def test_testing_criteria_need_distinct_names():
    with pytest.raises(Invalid, match="Two graders are named 'capital'") as caught:
        validate_testing_criteria([string_check("eq"), string_check("like")])
    assert caught.value.param == "testing_criteria[1].name"
    assert validate_testing_criteria([]) == []


def test_validation_returns_the_config_normalized():
    assert validate_grader(string_check("eq"), 0) == string_check("eq")
    assert validate_grader(regex_check("x"), 0) == {
        "type": "regex_check",
        "name": "format",
        "input": "{{sample.output_text}}",
        "pattern": "x",
        "flags": "",
        "operation": "search",
    }
    assert validate_grader(text_similarity(pass_threshold=1), 0)["pass_threshold"] == 1.0


def test_only_judge_graders_need_a_model():
    assert grader_needs_model(validate_grader(string_check("eq"), 0)) is None
    assert grader_needs_model(validate_grader(regex_check("x"), 0)) is None
    assert set(GRADER_TYPES) == {
        "string_check",
        "text_similarity",
        "json_check",
        "regex_check",
        "tool_call_check",
        "score_model",
        "label_model",
    }


def test_grading_with_an_unknown_type_is_an_error_result():
    result = grade({"type": "python", "name": "p"}, ITEM, make_sample("x"))
    assert (result.passed, result.error) == (False, "Unknown grader type 'python'.")
    assert result.to_dict() == {
        "name": "p",
        "type": "python",
        "score": 0.0,
        "passed": False,
        "error": "Unknown grader type 'python'.",
        "details": {},
    }
