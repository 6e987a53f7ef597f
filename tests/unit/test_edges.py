"""Soft edge maps: zero on flat regions, high on a step, differentiable; IoU of edge maps."""

from __future__ import annotations

import torch

from imgforge.ops.edges import edge_iou, sketch_from_image, soft_edges


def test_soft_edges_mark_a_step_and_nothing_on_flat_parts():
    img = torch.zeros(1, 3, 16, 16)
    img[..., 8:] = 1.0  # a vertical step between columns 7 and 8
    e = soft_edges(img)
    assert e.shape == (1, 1, 16, 16)
    assert float(e[0, 0, :, 7:9].min()) > 0.9 and float(e[0, 0, :, :6].max()) < 0.01
    sk = sketch_from_image(img)
    assert set(sk.unique().tolist()) == {0.0, 1.0} and sk[0, 0, :, 7:9].all()


def test_soft_edges_pass_gradients_and_iou():
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    soft_edges(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    a = torch.zeros(2, 1, 4, 4)
    b = torch.zeros(2, 1, 4, 4)
    a[0, 0, 0, :2] = 1
    b[0, 0, 0, 1:3] = 1
    iou = edge_iou(a, b)
    assert abs(float(iou[0]) - 1 / 3) < 1e-6 and float(iou[1]) == 1.0
