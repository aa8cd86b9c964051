"""The emotion task's distillation methods: the seed paper's Table 1 rows (docs/reference/mult-mosei.md §5.4).

Objective, equation 1 (§5.3): ``α·CE(student, label7) + β·L_KD``; ``none`` is the student alone.

| method | L_KD |
|---|---|
| none | – (the student without KD) |
| crd-final, crd-penultimate | CRD on the logits / the input of the last linear layer (eq. 2) |
| crd-post-attention, crd-attention | CRD per distilled block and layer (eqs. 7, 9) |
| edam-s, edam-t | −Σ p_T log p_S on attention maps, student downsampled / teacher upsampled (eqs. 12, 13) |
"""

from __future__ import annotations

from avkd.losses.methods import Method, method_table

__all__ = ["METHODS"]

METHODS = method_table(
    "emotion",
    [
        Method("none", None, "the video-only student without KD"),
        Method("crd-final", "crd", "CRD on the final linear layer (logits)", {"site": "final"}),
        Method(
            "crd-penultimate", "crd", "CRD on the input of the last linear layer", {"site": "penultimate"}
        ),
        Method(
            "crd-post-attention", "crd", "CRD on the post-attention linear layers", {"site": "post-attention"}
        ),
        Method("crd-attention", "crd", "CRD on the attention maps", {"site": "attention"}),
        Method("edam-s", "edam-s", "EDAM-S: attention maps, student proxies downsampled"),
        Method("edam-t", "edam-t", "EDAM-T: attention maps, teacher maps upsampled"),
    ],
)
