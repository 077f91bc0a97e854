"""The exercise mechanism (course_utils.exercises) and every chapter's reference solutions."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import course_utils.solutions
from course_utils.exercises import Case, Exercise, equal


def square(x: int) -> int:
    return x * x


def run(exercise: Exercise, answer, capsys):
    """What ``check`` prints (it returns nothing) and the ``Result`` of ``evaluate``."""
    assert exercise.check(answer) is None
    return exercise.evaluate(answer), capsys.readouterr().out


@pytest.fixture
def ex() -> Exercise:
    return Exercise(
        "square",
        cases=[Case((2,)), Case((-3,)), Case((0,), expected=0, label="zero")],
        solution=square,
        hints=["Multiply x by itself.", "Return x * x."],
    )


def test_correct_answer_passes(ex, capsys):
    result, out = run(ex, lambda x: x**2, capsys)
    assert result and result.status == "passed" and (result.passed, result.total) == (3, 3)
    assert "✅" in out


def test_wrong_answer_shows_input_expected_and_got(ex, capsys):
    result, out = run(ex, lambda x: 2 * x, capsys)
    assert not result and result.status == "failed" and result.passed == 1
    assert "❌" in out and "input:    (-3)" in out
    assert "expected: 9" in out and "got:      -6" in out
    assert ".hint()" in out


def test_not_attempted_is_friendly_and_does_not_raise(ex, capsys):
    def stub(x):
        raise NotImplementedError

    result, out = run(ex, stub, capsys)
    assert result.status == "not attempted" and not result
    assert "not attempted yet" in out


def test_learner_exception_is_reported_not_raised(ex, capsys):
    result, out = run(ex, lambda x: x / 0, capsys)
    assert result.status == "error"
    assert "ZeroDivisionError" in out
    assert ex.evaluate(42).status == "error"  # not a function


def test_hints_one_at_a_time(ex, capsys):
    assert ex.hint() == "Multiply x by itself."
    assert ex.hint() == "Return x * x."
    assert ex.hint() is None
    out = capsys.readouterr().out
    assert "Hint 1/2" in out and "Hint 2/2" in out and "no more hints" in out


def test_solution_is_shown_only_on_request(ex, capsys):
    assert "return x * x" not in repr(ex)
    ex.solution()
    assert "def square" in capsys.readouterr().out
    assert ex.solution_passes()


def test_value_exercise(capsys):
    value = Exercise("answer", kind="value", solution=lambda: 0.1 + 0.2, hints=["Add them."])
    assert value.evaluate(0.3)  # float tolerance
    assert value.evaluate(...).status == "not attempted"
    assert value.evaluate(None).status == "not attempted"
    assert value.evaluate(0.4).status == "failed"
    assert value.check(0.4) is None
    out = capsys.readouterr().out
    assert "got 0.4" in out and "0.3" not in out  # a value's answer is never given away


def test_experiment_exercise_computes_its_answer_from_arguments():
    def mean_of(values):
        """The answer computed from the notebook's data."""
        return sum(values) / len(values)

    ex = Exercise("mean", kind="value", solution=mean_of, solution_args=([1.0, 2.0, 6.0],))
    assert ex.evaluate(3.0) and not ex.evaluate(2.0)
    assert ex.solution_passes() and "def mean_of" in ex.solution_source()


def test_equal_handles_floats_containers_and_bools():
    assert equal([1.0, (2.0000001, 3)], [1, (2, 3)])
    assert equal({"a": 0.1 + 0.2}, {"a": 0.3})
    assert not equal(True, 1) and not equal([1, 2], [1, 2, 3]) and not equal("a", None)


def test_exercise_needs_cases():
    with pytest.raises(ValueError):
        Exercise("empty", solution=square)


SOLUTION_MODULES = [
    m.name for m in pkgutil.iter_modules(course_utils.solutions.__path__) if m.name.startswith("ch")
]


@pytest.mark.assets
@pytest.mark.parametrize("module_name", SOLUTION_MODULES)
def test_every_solution_passes_its_own_checker(module_name):
    module = importlib.import_module(f"course_utils.solutions.{module_name}")
    exercises = module.exercises(**module.test_context())
    assert exercises, f"{module_name} defines no exercises"
    for name, exercise in exercises.items():
        assert exercise.hints, f"{module_name}.{name} has no hints"
        assert exercise.solution_passes(), (
            f"{module_name}.{name}: the reference solution fails its own cases"
        )
