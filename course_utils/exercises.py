"""Auto-checked exercises with hints and hidden solutions (introduced in chapter 1).

An exercise is a function the learner fills in (or a value they set) plus hidden test cases::

    ex = Exercise(
        "count_tokens",
        cases=[Case(("Hello world", tokenizer)), Case(("", tokenizer))],
        solution=solutions.count_tokens,           # expected values come from it unless given
        hints=["Call the tokenizer on the text.", "Leave out the special tokens."],
    )
    ex.check(count_tokens)   # prints ✅ / ❌ with the failing input, what was expected and what came back
    ex.hint()                # the next hint, one at a time
    ex.solution()            # prints the reference solution (only when asked)

Checking never raises: an unanswered exercise (a function that raises ``NotImplementedError``, or
a value left as ``...`` or ``None``) prints a friendly "not attempted yet", and an exception in
the learner's code is reported, not propagated, so a notebook always runs to the end.

Solutions live in ``course_utils.solutions`` (one module per chapter), out of the learner's way;
the course site shows them in a collapsed block and the tests check every solution passes its own
exercise.
"""

from __future__ import annotations

import inspect
import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

_FROM_SOLUTION = object()  # sentinel: compute the expected value with the reference solution


@dataclass
class Case:
    """One hidden test case: the arguments to call the learner's function with.

    ``expected`` defaults to whatever the reference solution returns for the same arguments.
    ``label`` is how the case is shown in a failure message (default: the arguments' repr).
    """

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    expected: Any = _FROM_SOLUTION
    label: str = ""

    def describe(self) -> str:
        if self.label:
            return self.label
        shown = [_short(a) for a in self.args] + [
            f"{k}={_short(v)}" for k, v in self.kwargs.items()
        ]
        return f"({', '.join(shown)})"


@dataclass
class Result:
    """What ``Exercise.evaluate`` found; truthy only when every case passed."""

    status: str  # "passed", "failed", "error" or "not attempted"
    message: str
    passed: int = 0
    total: int = 0

    def __bool__(self) -> bool:
        return self.status == "passed"

    def __repr__(self) -> str:  # keeps a notebook cell's echo short
        return f"Result({self.status!r}, {self.passed}/{self.total})"


def _short(value: Any, limit: int = 60) -> str:
    if hasattr(value, "name_or_path") and not isinstance(value, (str, bytes)):
        return f"<{type(value).__name__} {value.name_or_path}>"  # a tokenizer or a model
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def equal(got: Any, expected: Any, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> bool:
    """Equality that tolerates float rounding, also inside lists, tuples and dicts."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return got is expected or got == expected and type(got) is type(expected)
    if isinstance(expected, float) or isinstance(got, float):
        try:
            return math.isclose(float(got), float(expected), rel_tol=rel_tol, abs_tol=abs_tol)
        except (TypeError, ValueError):
            return False
    if isinstance(expected, (list, tuple)) and isinstance(got, (list, tuple)):
        return len(got) == len(expected) and all(
            equal(g, e, rel_tol, abs_tol) for g, e in zip(got, expected, strict=True)
        )
    if isinstance(expected, dict) and isinstance(got, dict):
        return got.keys() == expected.keys() and all(
            equal(got[k], expected[k], rel_tol, abs_tol) for k in expected
        )
    try:
        return bool(got == expected)
    except Exception:  # e.g. comparing arrays of different shapes
        return False


def not_attempted(answer: Any) -> bool:
    """A value still set to the placeholder (``...`` or ``None``)."""
    return answer is ... or answer is None


class Exercise:
    """A learner's function (``kind="function"``) or value (``kind="value"``) checked on hidden cases.

    Args:
        name: short identifier shown in messages.
        cases: hidden test cases. For a value exercise, one ``Case(expected=...)`` (or none, to
            take the solution's return value).
        solution: the reference solution: a function with the learner's signature, or for a value
            exercise a function of no arguments returning the right value.
        hints: revealed one at a time by ``hint()``.
        compare: ``compare(got, expected) -> bool``; default ``equal`` (floats within 1e-6).
        kind: ``"function"`` or ``"value"``.
        solution_args: for a value exercise whose solution is computed from the notebook's objects
            (an experiment), the arguments its solution is called with.
    """

    def __init__(
        self,
        name: str,
        *,
        solution: Callable[..., Any],
        cases: Sequence[Case] = (),
        hints: Sequence[str] = (),
        compare: Callable[[Any, Any], bool] = equal,
        kind: str = "function",
        solution_args: tuple = (),
    ) -> None:
        if kind not in ("function", "value"):
            raise ValueError(f"kind must be 'function' or 'value', not {kind!r}")
        if kind == "function" and not cases:
            raise ValueError(f"exercise {name!r} needs at least one Case")
        self.name = name
        self.kind = kind
        self.cases = list(cases) if cases else [Case()]
        self.hints = list(hints)
        self.compare = compare
        self._solution = solution
        self._solution_args = tuple(solution_args)
        self._hints_shown = 0

    def __repr__(self) -> str:
        return f"Exercise({self.name!r}, {self.kind}, {len(self.cases)} hidden cases, {len(self.hints)} hints)"

    # -- checking -------------------------------------------------------------------------------
    def expected(self, case: Case) -> Any:
        if case.expected is not _FROM_SOLUTION:
            return case.expected
        if self.kind == "value":
            return self._solution(*self._solution_args)
        return self._solution(*case.args, **case.kwargs)

    def evaluate(self, answer: Any) -> Result:
        """Check ``answer`` silently and return a ``Result`` (``check`` prints it)."""
        total = len(self.cases)
        if self.kind == "value":
            if not_attempted(answer):
                return Result(
                    "not attempted",
                    f"⏳ {self.name}: not attempted yet — set the value, then run this cell again.",
                    0,
                    total,
                )
            expected = self.expected(self.cases[0])
            if self.compare(answer, expected):
                return Result("passed", f"✅ {self.name}: correct!", 1, 1)
            # A value is the answer itself: the message must not give it away.
            return Result(
                "failed",
                f"❌ {self.name}: not quite (got {_short(answer, 200)}). "
                f"Run the experiment again, or ask for a hint with .hint().",
                0,
                1,
            )

        if not callable(answer):
            return Result(
                "error",
                f"❌ {self.name}: expected a function, got {type(answer).__name__}.",
                0,
                total,
            )
        for passed, case in enumerate(self.cases):
            try:
                got = answer(*case.args, **case.kwargs)
            except NotImplementedError:
                return Result(
                    "not attempted",
                    f"⏳ {self.name}: not attempted yet — replace `raise NotImplementedError` with your code, then run this cell again.",
                    0,
                    total,
                )
            except Exception as e:  # the learner's bug, reported rather than raised
                return Result(
                    "error",
                    f"❌ {self.name}: your function raised {type(e).__name__}: {e}\n   on input: {case.describe()}",
                    passed,
                    total,
                )
            expected = self.expected(case)
            if not self.compare(got, expected):
                return Result(
                    "failed",
                    f"❌ {self.name}: {passed}/{total} hidden cases passed; this one failed:\n"
                    f"   input:    {case.describe()}\n"
                    f"   expected: {_short(expected, 200)}\n"
                    f"   got:      {_short(got, 200)}",
                    passed,
                    total,
                )
        return Result("passed", f"✅ {self.name}: all {total} hidden cases passed!", total, total)

    def check(self, answer: Any) -> None:
        """Run the hidden cases on ``answer`` and print ✅ / ❌ / ⏳ with what was wrong.

        Returns nothing, so a notebook cell shows only the message; ``evaluate`` returns the
        ``Result`` for code that needs it.
        """
        result = self.evaluate(answer)
        print(result.message)
        if result.status in ("failed", "error") and self._hints_shown < len(self.hints):
            print("   (stuck? `.hint()` on this exercise reveals a hint, one at a time)")

    # -- help -----------------------------------------------------------------------------------
    def hint(self) -> str | None:
        """Print the next hint (one more per call) and return it."""
        if not self.hints:
            print(f"💡 {self.name}: no hints for this one.")
            return None
        if self._hints_shown >= len(self.hints):
            print(f"💡 {self.name}: no more hints; `.solution()` shows the reference solution.")
            return None
        self._hints_shown += 1
        text = self.hints[self._hints_shown - 1]
        print(f"💡 Hint {self._hints_shown}/{len(self.hints)}: {text}")
        return text

    def solution_source(self) -> str:
        """The source code of the reference solution."""
        return textwrap.dedent(inspect.getsource(self._solution))

    def solution(self) -> None:
        """Print the reference solution (try the exercise first!)."""
        print(self.solution_source())

    def solution_passes(self) -> bool:
        """Does the reference solution pass its own cases? (used by the tests)"""
        answer = self._solution(*self._solution_args) if self.kind == "value" else self._solution
        return bool(self.evaluate(answer))


def chapter_exercises(chapter: int, **context: Any) -> dict[str, Exercise]:
    """The exercises of chapter ``chapter``, built from the notebook's objects in ``context``.

    Each chapter's module ``course_utils.solutions.chNN`` defines ``exercises(**context)``.
    """
    import importlib

    module = importlib.import_module(f"course_utils.solutions.ch{chapter:02d}")
    return module.exercises(**context)
