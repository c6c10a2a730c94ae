"""The job form's steps that browser tests share: fill fields by their labels, then launch."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect


def fill_job_form(page: Page, fields: dict[str, str]) -> Locator:
    """Fill the job form (#new-job) field by field, by label (a select by its option's value), in order; wait for
    the estimate; the form."""
    form = page.locator("#new-job")
    for label, value in fields.items():
        field = form.get_by_label(label)
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    expect(page.locator("#estimate-facts")).to_be_visible()
    return form


def launch_job(page: Page) -> None:
    """Accept the form's warnings if it lists any, launch, and wait for the new job's page."""
    warnings = page.locator("#job-estimate input[name=accept_warnings]")
    if warnings.count():
        warnings.check()
    page.get_by_role("button", name="Launch fine-tune").click()
    page.wait_for_url("**/jobs/ftjob-*")
