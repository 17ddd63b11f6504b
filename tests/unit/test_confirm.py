import pytest

from pgkura.confirm import confirm
from pgkura.errors import ConfirmationRequired


def run(answer: str | None = None, **kw):
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        assert answer is not None, "should not have asked"
        return answer

    options = {"yes": False, "production": False, "dbname": "app", "interactive": True}
    confirm("drop everything", ask=ask, **{**options, **kw})
    return asked


def test_yes_skips_the_question():
    assert run(yes=True, interactive=False) == []


def test_non_interactive_without_yes_is_refused():
    with pytest.raises(ConfirmationRequired, match="--yes"):
        run(interactive=False)


def test_development_accepts_y_and_refuses_anything_else():
    assert run("y")
    with pytest.raises(ConfirmationRequired, match="nothing was changed"):
        run("n")


def test_production_wants_the_database_name():
    with pytest.raises(ConfirmationRequired):
        run("y", production=True)
    assert "Type the database name" in run("app", production=True)[0]
