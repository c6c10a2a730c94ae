"""Eval pages: the list, the new-eval form with its live grader check, an eval, a run (live partial, filters,
cancel), compare, the blind review (no names until the results) and its results; CSRF on every form."""

from __future__ import annotations

import io
import re

from sqlmodel import select

from app.evals.reviews import create_review
from app.tables import Eval, EvalRun, EvalRunStatus, PairwiseReview, PairwiseVote
from tests.evals.pages_support import make_eval, make_run, two_runs

HX = {"HX-Request": "true"}


def grader_form(index: int = 0, **fields) -> dict[str, str]:
    base = {"type": "string_check", "name": "exact", "input": "{{sample.output_text}}"}
    base |= {"operation": "eq", "reference": "{{item.reference}}"}
    return {f"g{index}_{k}": v for k, v in (base | fields).items()}


# -- the list and the new-eval form ------------------------------------------------------------------------------
def test_the_list_shows_each_eval_with_its_latest_pass_rate(client, session):
    ev, _, _ = two_runs(session)
    make_eval(session, "empty one")
    html = client.get("/evals").text
    assert 'href="/evals/new"' in html and "New eval" in html
    assert f'href="/evals/{ev.id}"' in html and "arithmetic eval" in html and "empty one" in html
    assert "uploaded items" in html and "string_check" in html
    assert "50%" in html and "ft:tiny-llama:x:ftjob-1" in html  # the newest finished run: 3 of 6 passed
    assert "no finished run" in html
    assert 'aria-current="page">Evals' in html


def test_an_empty_list_says_how_to_start(client):
    assert "No evals yet" in client.get("/evals").text


def test_the_new_form_offers_datasets_splits_and_a_first_grader(client, dataset):
    html = client.get(f"/evals/new?dataset_id={dataset.id}").text
    assert f'<option value="{dataset.id}" selected>' in html
    assert "validation split (all examples when there is none)" in html
    assert 'name="g0_type" value="string_check"' in html and 'name="g0_reference" value="{{item.reference}}"' in html
    assert 'hx-post="/evals/new/check"' in html and 'type="file" name="file"' in html
    assert "score_model" in html and "label_model" in html and "regex_check" in html


def test_a_grader_fieldset_is_served_for_each_type(client):
    html = client.get("/evals/new/grader?type=score_model&index=3", headers=HX).text
    assert 'name="g3_type" value="score_model"' in html and 'name="g3_model"' in html
    assert "tiny-llama" in html  # the judge picker lists the catalogue
    assert 'name="g3_pass_threshold"' in html
    assert client.get("/evals/new/grader?type=python&index=0", headers=HX).status_code == 400


def test_the_live_check_names_the_wrong_field_of_each_grader(client):
    form = grader_form(0) | grader_form(1, name="sim", operation="contains")
    form |= grader_form(2, type="text_similarity", name="sim", evaluation_metric="bleu", pass_threshold="lots")
    html = client.post("/evals/new/check", data=form, headers=HX).text
    assert "Grader 1" in html and "ready" in html
    assert "<code>operation</code>" in html
    assert "<code>pass_threshold</code>" in html and "Give a number" in html


def test_creating_an_eval_from_a_dataset_opens_it(client, session, dataset):
    form = {"name": "arith page", "source": "dataset", "dataset_id": str(dataset.id), "split": ""} | grader_form()
    response = client.post("/evals", data=form, headers=HX)
    assert response.status_code == 200, response.text
    row = session.exec(select(Eval).where(Eval.name == "arith page")).one()
    assert response.headers["HX-Redirect"] == f"/evals/{row.id}"
    assert row.split == "validation" and row.testing_criteria[0]["operation"] == "eq"
    html = client.get(f"/evals/{row.id}").text
    assert "arith page" in html and "4 items" in html and "What is 1000 plus 1000?" in html
    assert "exact" in html and "string_check" in html and "No runs yet" in html


def test_an_uploaded_jsonl_is_refused_by_line_then_accepted(client, session):
    form = {"name": "uploaded", "source": "upload"} | grader_form()
    bad = b'{"item": {"question": "2+2", "reference": "4"}}\nnot json\n[1]\n'
    response = client.post("/evals", data=form, files={"file": ("items.jsonl", io.BytesIO(bad))}, headers=HX)
    assert response.status_code == 400
    assert "line 2: not JSON" in response.text and "line 3: no item object" in response.text
    assert response.headers["HX-Retarget"] == "#flash"
    good = b'{"item": {"question": "2+2", "reference": "4"}}\n{"question": "3+3", "reference": "6"}\n'
    response = client.post("/evals", data=form, files={"file": ("items.jsonl", io.BytesIO(good))}, headers=HX)
    assert response.status_code == 200, response.text
    eval_id = response.headers["HX-Redirect"].rsplit("/", 1)[1]
    html = client.get(f"/evals/{eval_id}").text
    assert "uploaded items" in html and "2 items" in html and "3+3" in html
    assert "needed: these items have no messages" in html


def test_a_form_without_graders_or_dataset_is_refused_in_words(client, dataset):
    response = client.post("/evals", data={"source": "dataset", "dataset_id": str(dataset.id)}, headers=HX)
    assert response.status_code == 400 and "Add at least one grader" in response.text
    response = client.post("/evals", data={"source": "dataset", "dataset_id": ""} | grader_form(), headers=HX)
    assert response.status_code == 400 and "Pick the dataset" in response.text
    response = client.post("/evals", data={"source": "dataset"} | grader_form(operation="has"), headers=HX)
    assert response.status_code == 400 and "Grader 1 “exact” (operation)" in response.text


# -- an eval and its runs ------------------------------------------------------------------------------------------
def test_the_eval_page_lists_runs_with_rates_per_grader_and_offers_the_models(client, session):
    ev, base, tuned = two_runs(session)
    html = client.get(f"/evals/{ev.id}").text
    assert f'href="/evals/{ev.id}/runs/{base.id}"' in html and f'value="{tuned.id}"' in html
    assert "40%" in html and "50%" in html and "1 error" in html
    assert 'title="95% interval (Wilson)"' in html
    assert 'action="/evals/' + ev.id + '/compare"' in html and "Blind A/B review" in html
    assert '<optgroup label="Base models">' in html and "tiny-llama" in html
    assert "hx-trigger" not in html.split('id="eval-runs"')[1].split(">")[0]  # nothing runs: no refresh


def test_a_running_run_makes_the_runs_table_refresh_itself(client, session):
    ev, _, _ = two_runs(session)
    make_run(session, ev.id, "tiny-llama", {}, status=EvalRunStatus.in_progress)
    html = client.get(f"/evals/{ev.id}", headers=HX).text
    assert html.startswith('\n<section id="eval-runs"') or 'id="eval-runs"' in html[:200]
    assert 'hx-trigger="every 2s"' in html and "<html" not in html


def test_starting_a_run_queues_it_and_opens_its_live_page(client, session, an_eval):
    response = client.post(f"/evals/{an_eval.id}/runs", data={"model": "tiny-llama", "temperature": "0"}, headers=HX)
    assert response.status_code == 200, response.text
    run = session.exec(select(EvalRun).where(EvalRun.eval_id == an_eval.id)).one()
    assert response.headers["HX-Redirect"] == f"/evals/{an_eval.id}/runs/{run.id}"
    assert run.status == EvalRunStatus.queued and run.n_items == 4
    assert run.data_source["input_messages"] == {"type": "item_reference", "item_reference": "item.messages"}
    page = client.get(f"/evals/{an_eval.id}/runs/{run.id}").text
    assert 'hx-trigger="every 1s"' in page and "0 of 4 items done" in page and "Cancel run" in page
    assert "item.messages, as they are" in page and "temperature 0.0" in page
    live = client.get(f"/evals/{an_eval.id}/runs/{run.id}", headers=HX).text
    assert live.lstrip().startswith('<div id="run-live"') and "<html" not in live
    response = client.post(f"/evals/{an_eval.id}/runs/{run.id}/cancel", headers=HX)
    assert response.headers["HX-Redirect"] == f"/evals/{an_eval.id}/runs/{run.id}"
    page = client.get(f"/evals/{an_eval.id}/runs/{run.id}").text
    assert "canceled" in page and "every 1s" not in page and "Cancel run" not in page


def test_a_run_of_uploaded_items_sends_them_with_the_template(client, session, settings):
    form = {"name": "qa", "source": "upload"} | grader_form()
    lines = b'{"item": {"question": "2+2", "reference": "4"}}\n'
    eval_id = (
        client.post("/evals", data=form, files={"file": ("i.jsonl", io.BytesIO(lines))}, headers=HX)
        .headers["HX-Redirect"]
        .rsplit("/", 1)[1]
    )
    refused = client.post(f"/evals/{eval_id}/runs", data={"model": "tiny-llama"}, headers=HX)
    assert refused.status_code == 400 and "input_messages" in refused.text
    done = client.post(
        f"/evals/{eval_id}/runs", data={"model": "tiny-llama", "prompt": "{{item.question}}"}, headers=HX
    )
    assert done.status_code == 200, done.text
    run = session.exec(select(EvalRun).where(EvalRun.eval_id == eval_id)).one()
    assert run.data_source["source"]["content"] == [{"item": {"question": "2+2", "reference": "4"}}]
    assert run.data_source["input_messages"]["template"] == [{"role": "user", "content": "{{item.question}}"}]


def test_an_eval_made_through_the_api_runs_the_items_of_its_latest_run(client, session, settings):
    from app.evals.evals import create_eval
    from app.evals.runs import create_run

    row = create_eval(session, settings, name="api made", testing_criteria=[])
    refused = client.post(f"/evals/{row.id}/runs", data={"model": "tiny-llama"}, headers=HX)
    assert refused.status_code == 400 and "through the API" in refused.text
    template = {"type": "template", "template": [{"role": "user", "content": "{{item.q}}"}]}
    source = {"type": "file_content", "content": [{"item": {"q": "hi"}}, {"item": {"q": "bye"}}]}
    create_run(
        session, settings, row.id, model="tiny-llama", data_source={"input_messages": template, "source": source}
    )
    response = client.post(f"/evals/{row.id}/runs", data={"model": "tiny-llama", "name": "again"}, headers=HX)
    assert response.status_code == 200, response.text
    again = session.exec(select(EvalRun).where(EvalRun.name == "again")).one()
    assert again.n_items == 2 and again.data_source["input_messages"] == template


def test_a_run_page_shows_rates_items_and_filters_by_outcome(client, session):
    ev, base, _ = two_runs(session)
    html = client.get(f"/evals/{ev.id}/runs/{base.id}").text
    assert "Passed (2)" in html and "Failed (3)" in html and "Errors (1)" in html
    assert "What is 3 plus 3?" in html and "no idea" in html and "boom" in html
    assert "every 1s" not in html and "completed" in html
    failed = client.get(f"/evals/{ev.id}/runs/{base.id}?status=fail").text
    assert "What is 2 plus 2?" in failed and "What is 0 plus 0?" not in failed
    assert client.get(f"/evals/{ev.id}/runs/{base.id}?status=maybe").status_code == 400
    assert client.get(f"/evals/{ev.id}/runs/evalrun_nope").status_code == 404
    other = make_eval(session, "other")
    assert client.get(f"/evals/{other.id}/runs/{base.id}").status_code == 404


# -- compare and review --------------------------------------------------------------------------------------------
def test_the_compare_page_shows_rates_side_by_side_and_the_changed_items(client, session):
    ev, base, tuned = two_runs(session)
    html = client.get(f"/evals/{ev.id}/compare?run={tuned.id}&run={base.id}").text  # ticked: the older is A
    a_at, b_at = html.index('<span class="side-tag">A</span>'), html.index('<span class="side-tag">B</span>')
    assert html.index("tiny-llama run", a_at) < b_at
    assert "+10 pts" in html and "2 better in B, 1 worse, 1 changed otherwise" in html
    assert 'id="item-1"' in html and 'id="item-2"' in html and 'id="item-0"' not in html
    item = html.split('id="item-1"')[1].split("</article>")[0]
    assert (
        "worse in B" in item
        and "pass → fail" in item
        and "graders that changed: exact" in item
        and '<div class="output">2</div>' in item
        and '<div class="output">3</div>' in item
    )
    assert html == client.get(f"/evals/{ev.id}/compare?a={base.id}&b={tuned.id}").text
    assert client.get(f"/evals/{ev.id}/compare?run={base.id}").status_code == 400
    assert client.get(f"/evals/{ev.id}/compare?a={base.id}&b=evalrun_x").status_code == 404


def test_a_blind_review_shows_no_names_and_reveals_them_on_the_results(client, session):
    ev, base, tuned = two_runs(session)
    response = client.post(f"/evals/{ev.id}/reviews", data={"run": [base.id, tuned.id]}, headers=HX)
    review = session.exec(select(PairwiseReview)).one()
    assert response.headers["HX-Redirect"] == f"/reviews/{review.id}"
    html = client.get(f"/reviews/{review.id}").text
    assert "1 of 5" in html and 'data-vote-key="1"' in html and "Left is better" in html
    for secret in ("tiny-llama", base.id, tuned.id, "ftjob-1"):
        assert secret not in html, secret
    for n in range(5):
        shown = re.search(r'name="item_index" value="(\d+)"', html)
        side = ["left", "right", "tie", "left", "left"][n]
        response = client.post(
            f"/reviews/{review.id}/vote", data={"item_index": shown.group(1), "side": side}, headers=HX
        )
        html = response.text
        if n < 4:
            assert f"{n + 2} of 5" in html and "<html" not in html
    assert response.headers["HX-Redirect"] == f"/reviews/{review.id}/results"
    results = client.get(f"/reviews/{review.id}/results").text
    assert "tiny-llama" in results and "ft:tiny-llama:x:ftjob-1" in results
    assert "a tie counts half" in results and 'id="ties">1<' in results
    votes = session.exec(select(PairwiseVote).where(PairwiseVote.review_id == review.id)).all()
    wins = sum(v.choice == "a" for v in votes)
    assert f'id="wins">{wins}<' in results and f'id="losses">{4 - wins}<' in results
    done = client.get(f"/reviews/{review.id}", follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/reviews/{review.id}/results"


def test_a_plain_form_vote_goes_back_to_the_review(client, session):
    _, base, tuned = two_runs(session)
    review = create_review(session, base.id, tuned.id)
    vote = session.exec(select(PairwiseVote).where(PairwiseVote.review_id == review.id).order_by("id")).first()
    response = client.post(
        f"/reviews/{review.id}/vote", data={"item_index": vote.item_index, "side": "tie"}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == f"/reviews/{review.id}"
    assert "2 of 5" in client.get(f"/reviews/{review.id}").text
    bad = client.post(f"/reviews/{review.id}/vote", data={"item_index": 0, "side": "up"}, headers=HX)
    assert bad.status_code == 400 and "left, right or tie" in bad.text
    results = client.get(f"/reviews/{review.id}/results").text
    assert "4 items still without a vote" in results and "Continue reviewing" in results
    assert "No clear winner" in results


def test_a_review_of_unfinished_runs_is_refused_in_words(client, session):
    ev, base, _ = two_runs(session)
    running = make_run(session, ev.id, "x", {0: "0"}, status=EvalRunStatus.in_progress)
    response = client.post(f"/evals/{ev.id}/reviews", data={"a": base.id, "b": running.id}, headers=HX)
    assert response.status_code == 409 and "wait for it to end" in response.text


def test_a_judge_model_reviews_from_the_compare_page(client, session, monkeypatch):
    from app.evals import reviews

    class AlwaysFirst:
        def ask(self, model_id, messages, params):
            return "1"

        def close(self):
            pass

    monkeypatch.setattr(reviews, "Judges", lambda *args: AlwaysFirst())
    ev, base, tuned = two_runs(session)
    response = client.post(
        f"/evals/{ev.id}/reviews", data={"a": base.id, "b": tuned.id, "judge": "tiny-llama"}, headers=HX
    )
    review = session.exec(select(PairwiseReview)).one()
    assert response.headers["HX-Redirect"] == f"/reviews/{review.id}/results"
    results = client.get(f"/reviews/{review.id}/results").text
    assert "Judged by" in results and ">tiny-llama<" in results and 'id="ties">5<' in results
    assert "tiny-llama: A first: 1 | B first: 1" in results
    listed = client.get(f"/evals/{ev.id}").text
    assert f'href="/reviews/{review.id}/results"' in listed and "judged by tiny-llama" in listed


def test_a_judge_model_votes_on_the_items_left(client, session, monkeypatch):
    from app.evals import reviews

    class SaysTwo:
        def ask(self, model_id, messages, params):
            return "2"

        def close(self):
            pass

    monkeypatch.setattr(reviews, "Judges", lambda *args: SaysTwo())
    _, base, tuned = two_runs(session)
    review = create_review(session, base.id, tuned.id)
    first = session.exec(select(PairwiseVote).where(PairwiseVote.review_id == review.id).order_by("id")).first()
    reviews.cast_vote(session, review.id, first.item_index, "a")
    response = client.post(f"/reviews/{review.id}/judge", data={"model": "tiny-llama"}, headers=HX)
    assert response.headers["HX-Redirect"] == f"/reviews/{review.id}/results"
    results = reviews.review_results(session, review.id)
    assert (results.wins, results.ties, results.pending) == (1, 4, 0)  # "2" both ways round: position bias, a tie
    missing = client.post(f"/reviews/{review.id}/judge", data={"model": "no-such-model"}, headers=HX)
    assert missing.status_code == 404


# -- CSRF -------------------------------------------------------------------------------------------------------------
def test_every_eval_form_needs_the_csrf_token(app, session):
    from fastapi.testclient import TestClient

    ev, base, tuned = two_runs(session)
    review = create_review(session, base.id, tuned.id)
    posts = [
        ("/evals", {"name": "x"} | grader_form()),
        ("/evals/new/check", grader_form()),
        (f"/evals/{ev.id}/runs", {"model": "tiny-llama"}),
        (f"/evals/{ev.id}/runs/{base.id}/cancel", {}),
        (f"/evals/{ev.id}/reviews", {"a": base.id, "b": tuned.id}),
        (f"/reviews/{review.id}/vote", {"item_index": "0", "side": "left"}),
        (f"/reviews/{review.id}/judge", {"model": "tiny-llama"}),
    ]
    with TestClient(app) as stranger:
        stranger.get("/evals")
        for url, data in posts:
            response = stranger.post(url, data=data)
            assert response.status_code == 403, url
    assert session.exec(select(PairwiseVote).where(PairwiseVote.choice.is_not(None))).all() == []
    assert len(session.exec(select(Eval)).all()) == 1


def test_pages_of_missing_things_answer_404(client):
    for url in ("/evals/eval_nope", "/reviews/review_nope", "/reviews/review_nope/results", "/evals/eval_nope/compare"):
        assert client.get(url + ("?a=x&b=y" if url.endswith("compare") else "")).status_code == 404, url


def test_stored_text_is_escaped_on_the_eval_pages(client, session):
    payload = '<script>alert("x")</script>'
    ev = make_eval(session, payload)
    run = make_run(session, ev.id, payload, {0: payload})
    other = make_run(session, ev.id, "b", {0: "0"})
    for url in (
        "/evals",
        f"/evals/{ev.id}",
        f"/evals/{ev.id}/runs/{run.id}",
        f"/evals/{ev.id}/compare?a={run.id}&b={other.id}",
    ):
        html = client.get(url).text
        assert payload not in html and "&lt;script&gt;" in html, url
    review = create_review(session, run.id, other.id)
    assert payload not in client.get(f"/reviews/{review.id}").text
