"""A model that ships its own code (`auto_map`) is refused, and none of its code runs."""

from __future__ import annotations

import json

import pytest

from course_utils.models import RemoteCodeRefusedError, load_classifier, load_encoder


@pytest.fixture
def remote_code_folder(tmp_path):
    marker = tmp_path / "EXECUTED"
    config = {
        "model_type": "evil_net",
        "architectures": ["EvilModel"],
        "auto_map": {"AutoConfig": "modeling_evil.EvilConfig", "AutoModel": "modeling_evil.EvilModel",
                     "AutoModelForSequenceClassification": "modeling_evil.EvilModel"},
        "hidden_size": 8,
    }  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    code = f"open({str(marker)!r}, 'w').write('this code ran')\n"
    (tmp_path / "modeling_evil.py").write_text(code)
    (tmp_path / "configuration_evil.py").write_text(code)
    return tmp_path, marker


@pytest.mark.parametrize("loader", [load_encoder, load_classifier])
def test_auto_map_is_refused_without_running_code(remote_code_folder, loader):
    folder, marker = remote_code_folder
    with pytest.raises(RemoteCodeRefusedError, match="never runs code"):
        loader(str(folder))
    assert not marker.exists()
