"""The judge graders (score_model, label_model) with a stand-in judge: a function returning canned replies."""

from __future__ import annotations

import pytest

from app.errors import Invalid, Upstream
from app.evals.graders import grade, grader_needs_model, make_sample, validate_grader
from app.evals.graders.model_graders import parse_label, parse_score

ITEM = {"question": "Capital of France?", "answer": "Paris"}
SAMPLE = make_sample("Lyon")


class CannedJudge:
    """Replies with a fixed text and remembers what it was asked."""

    def __init__(self, reply: str):
        self.reply = reply
        self.calls: list[tuple[str, list[dict]]] = []

    def __call__(self, model_id: str, messages: list[dict]) -> str:
        self.calls.append((model_id, messages))
        return self.reply


def score_model(**fields) -> dict:
    config = {
        "type": "score_model",
        "name": "correct",
        "model": "judge-model",
        "input": [
            {"role": "system", "content": "Score from 0 to 1 how well the answer matches the reference."},
            {
                "role": "user",
                "content": "Q: {{item.question}}\nReference: {{item.answer}}\nAnswer: {{sample.output_text}}",
            },
        ],
        "range": [0, 1],
        "pass_threshold": 0.5,
    }
    return validate_grader({**config, **fields}, 0)


def label_model(**fields) -> dict:
    config = {
        "type": "label_model",
        "name": "sentiment",
        "model": "judge-model",
        "input": [{"role": "user", "content": "Classify: {{sample.output_text}}"}],
        "labels": ["positive", "neutral", "negative"],
        "passing_labels": ["positive"],
    }
    return validate_grader({**config, **fields}, 0)


def test_the_judge_gets_the_rendered_messages_and_its_model():
    judge = CannedJudge("0.9")
    result = grade(score_model(), ITEM, SAMPLE, judge)
    assert judge.calls == [
        (
            "judge-model",
            [
                {"role": "system", "content": "Score from 0 to 1 how well the answer matches the reference."},
                {"role": "user", "content": "Q: Capital of France?\nReference: Paris\nAnswer: Lyon"},
            ],
        )
    ]
    assert (result.score, result.passed, result.error) == (0.9, True, None)
    assert result.details == {"reply": "0.9", "range": [0.0, 1.0], "pass_threshold": 0.5}


@pytest.mark.parametrize(
    ("reply", "score", "passed"),
    [
        ('{"score": 0.2}', 0.2, False),
        ('```json\n{"result": 0.5, "steps": []}\n```', 0.5, True),  # at the threshold passes
        ("The answer is wrong. Score: 0", 0.0, False),
        ("1. It names a city.\n2. Score = 0.75", 0.75, True),  # a number after "score" beats the first number
        ("<think>maybe 0.1? no, 2 points</think>0.6", 0.6, True),
        (".8", 0.8, True),
    ],
)
def test_score_model_reads_the_score_from_the_reply(reply, score, passed):
    result = grade(score_model(), ITEM, SAMPLE, CannedJudge(reply))
    assert (result.score, result.passed, result.error) == (pytest.approx(score), passed, None)


def test_score_model_with_its_own_range_and_threshold():
    config = score_model(range=[1, 10], pass_threshold=7)
    assert grade(config, ITEM, SAMPLE, CannedJudge("I'd give it 8/10")).passed
    assert not grade(config, ITEM, SAMPLE, CannedJudge("6")).passed


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("I can't tell.", "The judge's reply holds no score."),
        ("7", "The judge's score 7 is outside the range [0, 1]."),
        ('{"score": "high"}', "The judge's reply holds no score."),
    ],
)
def test_an_unreadable_score_is_an_error_result_not_a_crash(reply, error):
    result = grade(score_model(), ITEM, SAMPLE, CannedJudge(reply))
    assert (result.score, result.passed, result.error) == (0.0, False, error)
    assert result.details["reply"] == reply


def test_a_judge_grader_without_a_judge_is_an_error_result():
    result = grade(score_model(), ITEM, SAMPLE)
    assert result.error == "No judge to ask: a score_model grader needs a model to chat with."
    assert not result.passed


def test_a_failing_judge_is_an_error_result():
    def unreachable(model_id, messages):
        raise Upstream("The model server refused the request.")

    def broken(model_id, messages):
        raise RuntimeError("out of memory")

    assert grade(score_model(), ITEM, SAMPLE, unreachable).error == (
        "The judge judge-model failed: The model server refused the request."
    )
    assert (
        grade(label_model(), ITEM, SAMPLE, broken).error == "The judge judge-model failed: RuntimeError: out of memory"
    )


def test_score_model_defaults_and_openais_fields():
    config = {
        "type": "score_model",
        "name": "s",
        "model": "m",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Rate {{sample.output_text}}"}]}],
        "sampling_params": {"temperature": 0, "top_p": 1, "seed": 42, "max_completions_tokens": 64},
    }
    normalized = validate_grader(config, 0)
    assert normalized["range"] == [0.0, 1.0]
    assert normalized["pass_threshold"] == 0.5  # the middle of the range when none is given
    assert normalized["sampling_params"] == config["sampling_params"]
    assert grader_needs_model(normalized) == "m"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"range": [1, 0]}, "range"),
        ({"range": [0, 1, 2]}, "range"),
        ({"pass_threshold": 2}, "pass_threshold"),
        ({"model": ""}, "model"),
        ({"input": []}, "input"),
        ({"input": [{"role": "user", "content": {"type": "input_audio", "input_audio": {}}}]}, "input[0].content.type"),
        ({"sampling_params": {"max_tokens": 5}}, "sampling_params.max_tokens"),
        ({"sampling_params": {"temperature": 3}}, "sampling_params.temperature"),
        ({"sampling_params": {"reasoning_effort": "huge"}}, "sampling_params.reasoning_effort"),
        ({"labels": ["a"]}, "labels"),
    ],
)
def test_score_model_validation_names_the_field(fields, param):
    with pytest.raises(Invalid) as caught:
        score_model(**fields)
    assert caught.value.param == f"testing_criteria[0].{param}"


@pytest.mark.parametrize(
    ("reply", "label", "passed"),
    [
        ("positive", "positive", True),
        ("Negative.", "negative", False),
        ('"POSITIVE"', "positive", True),
        ('{"label": "neutral"}', "neutral", False),
        ("The statement is mostly positive, not negative.", "positive", True),  # the label named first
        ("<think>negative? no.</think>\nneutral", "neutral", False),
    ],
)
def test_label_model_reads_the_label_from_the_reply(reply, label, passed):
    result = grade(label_model(), ITEM, SAMPLE, CannedJudge(reply))
    assert (result.details["label"], result.passed, result.score, result.error) == (
        label,
        passed,
        1.0 if passed else 0.0,
        None,
    )


def test_label_model_reply_without_a_label_is_an_error_result():
    result = grade(label_model(), ITEM, SAMPLE, CannedJudge("I'm not sure."))
    assert (result.passed, result.error) == (False, "The judge's reply names none of the labels.")


def test_a_longer_label_wins_over_one_it_contains():
    assert parse_label("not relevant", ["relevant", "not relevant"]) == "not relevant"
    assert parse_label("It is not relevant at all", ["relevant", "not relevant"]) == "not relevant"


def test_label_model_accepts_openais_example_verbatim():
    example = {
        "name": "First label grader",
        "type": "label_model",
        "model": "gpt-4o-2024-08-06",
        "input": [
            {
                "type": "message",
                "role": "system",
                "content": {
                    "type": "input_text",
                    "text": "Classify the sentiment of the following statement as one of "
                    "positive, neutral, or negative",
                },
            },
            {
                "type": "message",
                "role": "user",
                "content": {"type": "input_text", "text": "Statement: {{item.response}}"},
            },
        ],
        "passing_labels": ["positive"],
        "labels": ["positive", "neutral", "negative"],
    }
    config = validate_grader(example, 0)
    judge = CannedJudge("positive")
    assert grade(config, {"response": "I love it"}, SAMPLE, judge).passed
    assert judge.calls[0][1][1] == {"role": "user", "content": "Statement: I love it"}


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"passing_labels": ["great"]}, "passing_labels", "'great' is not"),
        ({"passing_labels": []}, "passing_labels", "can't be empty"),
        ({"labels": []}, "labels", "can't be empty"),
        ({"labels": ["a", "a"]}, "labels", "twice"),
        ({"range": [0, 1]}, "range", "Unknown field"),
    ],
)
def test_label_model_validation_names_the_field(fields, param, words):
    with pytest.raises(Invalid, match=words) as caught:
        label_model(**fields)
    assert caught.value.param == f"testing_criteria[0].{param}"


def test_parse_score_returns_none_without_a_number():
    assert parse_score("") is None
    assert parse_score("no") is None
    assert parse_score("-0.5e1 points") == -5.0
