"""The pack's weights format: safetensors with a livelatent header, loaded without torch."""

import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

from livelatent import ModelLoadError, load_model
from livelatent.model.config import VAEConfig
from livelatent.model.vae import RawAudioVAE
from livelatent.model.checkpoint import load_checkpoint, save_checkpoint

SMALL = VAEConfig(window=64, hidden=32, latent=8, sample_rate=22050)


def test_safetensors_and_pt_hold_the_same_model_with_the_same_hash(tmp_path):
    module = RawAudioVAE(SMALL)
    pt = load_checkpoint(save_checkpoint(tmp_path / "m.pt", module, SMALL, dtype="float16"))
    st = load_checkpoint(save_checkpoint(tmp_path / "m.safetensors", pt.state_dict, SMALL,
                                         training={"epochs": 3}, dtype="float16"))
    assert st.content_hash == pt.content_hash
    assert st.config == SMALL and st.training == {"epochs": 3}
    z = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    assert np.array_equal(load_model(tmp_path / "m.safetensors").decode(z),
                          load_model(tmp_path / "m.pt").decode(z))


def test_a_pack_folder_prefers_its_safetensors(tmp_path):
    save_checkpoint(tmp_path / "model.safetensors", RawAudioVAE(SMALL), SMALL)
    (tmp_path / "model.pt").write_text("an old, broken file that must not be read")
    assert load_model(tmp_path).sample_rate == 22050


def test_broken_safetensors_files_are_clear_errors(tmp_path):
    good = save_checkpoint(tmp_path / "good.safetensors", RawAudioVAE(SMALL), SMALL)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(ModelLoadError, match="cut.safetensors: truncated or corrupt"):
        load_model(cut)
    from safetensors.numpy import save_file
    save_file({"w": np.zeros(3, np.float32)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ModelLoadError, match="foreign.safetensors: not a livelatent model"):
        load_model(tmp_path / "foreign.safetensors")


def test_playing_the_default_pack_never_imports_torch():
    code = ("import sys, numpy as np, livelatent\n"
            "codec = livelatent.load_model()\n"
            "codec.decode(np.zeros((1, codec.latent_dim), np.float32))\n"
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("text, why", [
    ("\x00\x01 not json", "unreadable"), ("[]", "a list, not an object"), ("null", "a NoneType"),
    ('{"name": "mine", "version": "x", "weights_hash": "ab"}', "version 'x' is not a whole number"),
    ('{"name": "mine", "version": 1.9, "weights_hash": "ab"}', "version 1.9"),       # (read as 1)
    ('{"name": "mine", "version": 1e308, "weights_hash": "ab"}', "version 1e+308"),  # (309 digits)
    ('{"version": 1, "weights_hash": "ab"}', "name or weights_hash is missing"),
])
def test_a_malformed_pack_file_is_said_in_one_line_and_the_model_still_plays(tmp_path, capsys,
                                                                             text, why):
    from livelatent.cli import main
    from livelatent.model.packs import pack_info
    save_checkpoint(tmp_path / "model.safetensors", RawAudioVAE(SMALL), SMALL)
    (tmp_path / "pack.json").write_text(text)
    with pytest.warns(UserWarning, match=f"pack.json: not a valid pack file .*{re.escape(why)}"):
        assert pack_info(tmp_path) is None
    assert main(["info", str(tmp_path)]) == 0                 # (the line was dropped silently)
    err = capsys.readouterr().err
    assert err.startswith("livelatent: warning: ") and "not a valid pack file" in err, err
    with pytest.warns(UserWarning, match="not a valid pack file"):       # said when it loads too
        assert load_model(tmp_path).sample_rate == 22050


def test_a_pack_version_written_as_a_float_of_a_whole_number_is_that_version(tmp_path):
    from livelatent.model.packs import pack_info
    (tmp_path / "pack.json").write_text('{"name": "mine", "version": 2.0, "weights_hash": "ab"}')
    assert pack_info(tmp_path).version == 2


def test_a_pack_whose_file_names_other_weights_is_said_when_its_model_loads(tmp_path):
    import json
    save_checkpoint(tmp_path / "model.safetensors", RawAudioVAE(SMALL), SMALL)
    (tmp_path / "pack.json").write_text(json.dumps({"name": "mine", "version": 1,
                                                    "weights_hash": "ab" * 32}))
    with pytest.warns(UserWarning, match="pack.json names weights abababababab, but "
                                         "model.safetensors holds .*not as pack 'mine'"):
        codec = load_model(tmp_path)
    (tmp_path / "pack.json").write_text(json.dumps({"name": "mine", "version": 1,
                                                    "weights_hash": codec.content_hash}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(tmp_path)


def test_a_card_that_cannot_be_read_is_said_and_the_rest_of_info_still_shows(tmp_path, capsys):
    from livelatent.cli import main
    save_checkpoint(tmp_path / "model.safetensors", RawAudioVAE(SMALL), SMALL)
    (tmp_path / "card.md").write_bytes(b"\xff\xfe\xd2 not utf-8")       # (a raw UnicodeDecodeError)
    assert main(["info", str(tmp_path)]) == 0
    assert f"its card {tmp_path / 'card.md'} cannot be read: not UTF-8 text" in capsys.readouterr().out
    (tmp_path / "card.md").unlink()
    (tmp_path / "card.md").mkdir()
    assert main(["info", str(tmp_path)]) == 0
    assert "cannot be read: Is a directory" in capsys.readouterr().out
