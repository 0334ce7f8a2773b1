import pytest

from budo.config import Settings, settings_table
from budo.errors import ConfigError


def test_defaults_and_db_under_state_dir(tmp_path):
    s = Settings.from_env({"XDG_STATE_HOME": str(tmp_path)})
    assert s.llm_url == "http://localhost:11434/v1"
    assert s.llm_model == "qwen2.5:14b"
    assert s.db_path == str(tmp_path / "budo" / "budo.db")


def test_lists_and_numbers_parse():
    s = Settings.from_env({"BUDO_NAMESPACES": "shop, default,", "BUDO_MAX_TURNS": "7",
                           "BUDO_APPROVAL_TIMEOUT": "1.5"})
    assert s.namespaces == ("shop", "default")
    assert s.max_turns == 7
    assert s.approval_timeout == 1.5


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"BUDO_MAX_TURNS": "many"}, "BUDO_MAX_TURNS"),
        ({"BUDO_MAX_TURNS": "0"}, "BUDO_MAX_TURNS"),
        ({"BUDO_LLM_URL": "localhost:11434"}, "BUDO_LLM_URL"),
        ({"BUDO_RUN_TIMEOUT": "ten"}, "BUDO_RUN_TIMEOUT"),
    ],
)
def test_bad_values_name_the_variable(env, names):
    with pytest.raises(ConfigError, match=names):
        Settings.from_env(env)


def test_slack_requirements_name_the_variable():
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        Settings.from_env({}).require_slack()
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1"}).require_slack()
    with pytest.raises(ConfigError, match="BUDO_ONCALL"):
        Settings.from_env(
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}
        ).require_slack()
    Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1",
                       "BUDO_ONCALL_USERS": "U1"}).require_slack()


def test_settings_table_lists_every_variable():
    table = settings_table()
    for var in ("BUDO_LLM_URL", "SLACK_API_URL", "BUDO_ONCALL_USERGROUP", "BUDO_DB"):
        assert f"`{var}`" in table
