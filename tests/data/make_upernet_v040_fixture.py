"""Make the FLAIR-HUB UPerNet fixture of ``tests/test_published.py`` with segmentation-models-pytorch 0.4.0.

FLAIR-HUB's published UPerNets hold smp 0.4.0's UPerNet, which today's smp no longer has. This
script builds one with smp 0.4.0 itself, as FLAIR-HUB's code does (the encoder of a 3-channel
model, the decoder and head of a 1-channel one), on timm's tiny ``test_convnext`` encoder with
narrow decoder widths so that the file stays small, with batch-norm statistics away from 0/1 as
in a trained model. It writes the weights in FLAIR-HUB's ``.safetensors`` layout and, for a fixed
uint8 input, the probabilities smp 0.4.0 gives after FLAIR-HUB's IR normalization (NIR, R, G).

smp 0.4.0 is not a dependency of flairlc: install it apart (with its own dependencies
pretrainedmodels, efficientnet-pytorch, six, munch) and point ``--smp040`` at it:

    pip download --no-deps segmentation-models-pytorch==0.4.0 pretrainedmodels efficientnet-pytorch six munch -d /tmp/smp040
    (unpack them into one folder, e.g. /tmp/smp040/site)
    python tests/data/make_upernet_v040_fixture.py --smp040 /tmp/smp040/site
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "FLAIR-HUB_LC-A_IR_testconvnext-upernet.safetensors"
EXPECTED = HERE / "FLAIR-HUB_LC-A_IR_testconvnext-upernet.expected.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smp040", type=Path, required=True, help="folder holding smp 0.4.0 and its dependencies")
    args = parser.parse_args()
    sys.path.insert(0, str(args.smp040))
    import segmentation_models_pytorch as smp
    import torch
    from safetensors.torch import save_file

    assert smp.__version__ == "0.4.0", smp.__version__
    torch.manual_seed(0)
    kwargs = dict(encoder_name="tu-test_convnext", encoder_weights=None, classes=19,
                  decoder_pyramid_channels=32, decoder_segmentation_channels=16)
    full = smp.create_model("upernet", in_channels=3, **kwargs)
    decoder_model = smp.create_model("upernet", in_channels=1, **kwargs)
    for module in [*full.encoder.modules(), *decoder_model.modules()]:
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    full.eval(), decoder_model.eval()
    aerial = torch.randint(0, 256, (1, 5, 64, 64), dtype=torch.uint8)
    mean = torch.tensor([106.59, 105.66, 111.35], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([39.78, 52.23, 45.62], dtype=torch.float64).view(1, 3, 1, 1)
    x = ((aerial[:, [3, 0, 1]].double() - mean) / std).float()
    with torch.no_grad():
        probabilities = decoder_model.segmentation_head(decoder_model.decoder(*full.encoder(x))).softmax(1)
    task = "model.main_decoders.AERIAL_LABEL-COSIA.seg_model"
    state = {f"model.encoders.AERIAL_RGBI.seg_model.{k}": v for k, v in full.encoder.state_dict().items()}
    state.update({f"{task}.decoder.{k}": v for k, v in decoder_model.decoder.state_dict().items()})
    state.update({f"{task}.segmentation_head.{k}": v for k, v in decoder_model.segmentation_head.state_dict().items()})
    save_file({k: v.contiguous() for k, v in state.items()}, str(WEIGHTS))
    torch.save({"aerial": aerial, "probabilities": probabilities, "smp_version": smp.__version__}, EXPECTED)
    print(f"wrote {WEIGHTS.name} ({WEIGHTS.stat().st_size} bytes) and {EXPECTED.name}")


if __name__ == "__main__":
    main()
