"""What the bot says to the model on a member's behalf, and the member's own words inside it.

A variation sends the model an instruction around the original prompt, and a reply that only
attaches images asks it to refine; those words are the model's (English, whatever the member speaks),
never shown: results, /show, /history and /audit show `shown_prompt`.
"""

from __future__ import annotations

#: A subtle variation edits the result: same composition, small changes (the original prompt follows).
SUBTLE = (
    "Make a subtle variation of this image: keep the composition, subject and colours, change small details."
)
SUBTLE_PROMPT = "\nOriginal prompt: "
#: A strong variation asks for the original prompt again with the result as a reference. Said to the
#: model, since an image beside a prompt it already matches is otherwise taken as "keep this".
STRONG = (
    "Use the attached image only as a loose reference "
    "for subject and style: make a new, clearly "
    "different image from this description (composition, pose and framing may all change)."
)
#: What the single 🔀 Vary put before the prompt (its turns are varied again from the bare prompt).
LEGACY_VARY = "Create a variation of this image with the same subject and style."
#: What a reply without words asks of the model.
REFINE = "Refine this image"


def base_prompt(prompt: str) -> str:
    """The member's own prompt inside a variation's (a variation of a variation never nests them)."""
    while True:
        if prompt.startswith(SUBTLE):
            _, _, prompt = prompt.partition(SUBTLE_PROMPT)
        elif prompt.endswith(STRONG):
            prompt = prompt.removesuffix(STRONG)
        elif prompt.startswith(LEGACY_VARY):
            prompt = prompt.removeprefix(LEGACY_VARY)
        else:
            return prompt.strip()
        prompt = prompt.strip()


def variation_prompt(action: str, prompt: str) -> str:
    """What a variation asks of the model: the subtle edit instruction then the original prompt, or
    the original prompt then how to use the reference."""
    base = base_prompt(prompt)
    if action == "vsub":
        return f"{SUBTLE}{SUBTLE_PROMPT}{base}" if base else SUBTLE
    return f"{base}\n\n{STRONG}" if base else STRONG


def shown_prompt(prompt: str) -> str:
    """The words a member wrote in a prompt the bot sent (a variation's instruction and a wordless
    refine's request left out)."""
    base = base_prompt(prompt)
    return "" if base == REFINE else base
