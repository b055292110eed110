"""Prompts of the policy (router) model."""

SYSTEM = (
    "You are podium, an orchestrator. Solve the user's task by calling tools, spending as little "
    "money and time as possible. Each tool description ends with [where it runs, its price, its "
    "usual time]. Trust tool results over your own guesses. When you know the answer, call "
    "`answer` with it.\n\n"
    "User preference: {preference}\n"
    "Budget: ${budget:.4f} for the whole task, at most {max_turns} turns."
)

NO_PREFERENCE = "none stated: balance accuracy and cost."

FINAL = "{reason} Call answer now with your final answer, using what you have learned so far."
REASONS = {
    "budget": "The budget does not allow another tool call.",
    "max_turns": "This is the last turn.",
    "answer": "You are repeating a call you already made.",
}

OBSERVE = (
    "If that answers the question, call answer with the answer alone; otherwise call the tool "
    "still needed. "
    "(Budget left: ${left:.4f}; turn {turn} of {max_turns}.)"
)

# Placeholders, not a sample call: a small policy copies a literal example's values as its own.
MALFORMED = (
    "Your tool call could not be run: {errors}. Reply with one valid tool call, "
    '{{"name": <tool name>, "arguments": <JSON object of its arguments>}}, or call answer with '
    "the final answer."
)

BUNDLED = (
    "answer was called together with other tools, so nothing was run: call answer alone, "
    "or call only the tools you still need"
)

UNKNOWN_MODEL = (
    "answer's model {model!r} is no model of this pool ({names}): name one of them, or "
    "answer yourself"
)

BLOCKED = "Not run: its worst-case cost ${bound:.6f} exceeds the ${left:.6f} left of the budget."

REPEATED = (
    "Already run with exactly these arguments; it returned:\n{result}\n"
    "Do not repeat a call. If this answers the question, call answer with it."
)

EMPTY = "the reply was empty"

REJECTED = "Not run: the user rejected this call. Use another tool or answer with what you have."

APPROVAL = "Approve this tool call? Its predicted cost ${cost:.6f} exceeds ${limit:.6f}."
