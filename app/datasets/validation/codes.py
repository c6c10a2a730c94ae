"""The example checks' vocabulary: roles, message keys, and every problem code with its level and explanation.

Codes are stable (stored in Example.problems, used in URLs and the API). checks.py applies them; the report, the
live check and the CLI read the table.
"""

from __future__ import annotations

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MESSAGE_KEYS = frozenset({"role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call"})
CONTENT_PART_TYPES = frozenset({"text", "image_url"})

# Every code with its level and a one-line explanation (shown on the report page).
CODES: dict[str, tuple[str, str]] = {
    "data_type": ("error", "The example is not a JSON object."),
    "missing_messages_list": ("error", "The example has no non-empty `messages` list."),
    "message_missing_key": ("error", "A message lacks `role`, `content` or (tool messages) `tool_call_id`."),
    "message_unrecognized_key": ("error", "A message has a key OpenAI's chat format does not know."),
    "unrecognized_role": ("error", "A message's role is not system, developer, user, assistant, tool or function."),
    "missing_content": ("error", "A message's content is empty or not text."),
    "example_missing_assistant_message": ("error", "The example has no assistant message to learn from."),
    "invalid_weight": ("error", "A `weight` is not 0 or 1, or is set on a message that is not the assistant's."),
    "invalid_tool_calls": ("error", "`tool_calls` is not a list of function calls with an id and a name."),
    "invalid_tool_arguments": ("error", "`tool_calls[].function.arguments` is not a string of JSON."),
    "unmatched_tool_call_id": ("error", "A tool message answers a `tool_call_id` that no assistant call made."),
    "undeclared_function": ("error", "An assistant calls a function that the example's `tools` does not declare."),
    "invalid_tools": ("error", "The top-level `tools` is not a list of function definitions with names."),
    "missing_system_message": ("warning", "The example has no system message."),
    "missing_user_message": ("warning", "The example has no user message."),
    "last_message_not_assistant": ("warning", "The last message is not the assistant's, so it teaches nothing."),
    "consecutive_same_role": ("warning", "Two consecutive messages have the same role."),
    "nothing_to_train": ("warning", "Every assistant message has weight 0, so the example trains nothing."),
    "system_message_not_first": ("warning", "A system message comes after the conversation has started."),
    "over_context_limit": ("warning", "The example is longer than the model's training context and is truncated."),
    "duplicate_example": ("warning", "The example appears more than once in the dataset."),
    "train_validation_leakage": ("warning", "The same example is in both the training and the validation data."),
    "too_few_examples": ("warning", "The dataset has fewer than 10 valid training examples (OpenAI's minimum)."),
    # Preference (DPO) examples: OpenAI's rules for its DPO shape (app/datasets/validation/preference.py).
    "preference_missing_input": ("error", "A preference example has no `input` with a non-empty `messages` list."),
    "preference_missing_output": ("error", "A preference example lacks its preferred or its rejected answer."),
    "preference_output_not_single": ("error", "An answer must be a list of exactly one assistant message."),
    "preference_output_not_assistant": ("error", "An answer's message is not the assistant's."),
    "preference_output_missing_content": ("error", "An answer has neither text content nor tool calls."),
    "input_last_message_not_user": (
        "error",
        "The input conversation of a preference example must end with a user message.",
    ),
    "preference_outputs_identical": (
        "warning",
        "The preferred and rejected answers are the same: the pair teaches nothing.",
    ),
}
ERROR_CODES = tuple(c for c, (level, _) in CODES.items() if level == "error")
WARNING_CODES = tuple(c for c, (level, _) in CODES.items() if level == "warning")
