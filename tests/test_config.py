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


@pytest.mark.parametrize(("env", "expected"), [
    ({"BUDO_LLM_TIMEOUT": "nan"}, "BUDO_LLM_TIMEOUT must be a finite number of seconds, got 'nan'"),
    ({"BUDO_RUN_TIMEOUT": "inf"}, "BUDO_RUN_TIMEOUT must be a finite number of seconds, got 'inf'"),
    ({"BUDO_MAX_RUNS": "0"}, "BUDO_MAX_RUNS must be a finite number greater than 0, got 0"),
    ({"BUDO_LOG_FORMAT": "xml"}, "BUDO_LOG_FORMAT must be text or json, got 'xml'"),
])
def test_non_finite_numbers_and_unknown_formats_are_refused(env, expected):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert str(caught.value) == expected


def test_a_budo_db_in_a_missing_directory_is_refused_and_not_created(tmp_path):
    from budo.config import check_db_directory

    missing = tmp_path / "no" / "such"
    with pytest.raises(ConfigError, match=r"BUDO_DB: directory .* does not exist"):
        check_db_directory({"BUDO_DB": str(missing / "x.db")})
    assert not (tmp_path / "no").exists()
    check_db_directory({"BUDO_DB": str(tmp_path / "x.db")})   # an existing directory is fine
    check_db_directory({})                                    # the default is created on use
