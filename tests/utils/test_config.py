

def test_conf_dir_is_the_packaged_conf_unless_the_environment_says_otherwise(monkeypatch, tmp_path):
    from prefgym.utils.config import conf_dir

    monkeypatch.delenv("PREFGYM_CONF_DIR", raising=False)
    assert (conf_dir() / "config.yaml").is_file() and (conf_dir() / "experiment" / "pep8_ppo.yaml").is_file()
    monkeypatch.setenv("PREFGYM_CONF_DIR", str(tmp_path))
    assert conf_dir() == tmp_path.resolve()
