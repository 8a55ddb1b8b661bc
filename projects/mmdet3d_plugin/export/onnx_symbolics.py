"""ONNX translations, in standard ONNX operators, for the PyTorch ops ONNX lacks.

StreamPETR's 3D position embedding inverts ``lidar2img`` (``torch.linalg.inv``); ONNX has no
matrix inverse (only onnxruntime's contrib ``com.microsoft::Inverse``, a custom op). A
camera matrix is 4x4, so the inverse is written out as the adjugate over the determinant
with 2x2 sub-determinants (``Gather``, ``Mul``, ``Sub``, ``Add``, ``Div``, ``Concat``,
``Reshape``), see :func:`adjugate_4x4`. :func:`standard_op_symbolics` registers that
translation for the duration of one export and removes it afterwards.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

import torch

_INVERSE_OP = "aten::linalg_inv"

Binary = Callable[[Any, Any], Any]

# Row-major 2x2 sub-determinants of rows (0, 1) and of rows (2, 3): column pairs in order.
_PAIRS = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
# adj[i][j] = sign * (a[r][x] * m[p] - a[r][y] * m[q] + a[r][z] * m[k]) with m the minors of
# the other two rows: (row r, columns (x, y, z), minors (p, q, k), uses top minors, sign).
_ADJUGATE = (
    ((1, (1, 2, 3), (5, 4, 3), False, 1), (0, (1, 2, 3), (5, 4, 3), False, -1),
     (3, (1, 2, 3), (5, 4, 3), True, 1), (2, (1, 2, 3), (5, 4, 3), True, -1)),
    ((1, (0, 2, 3), (5, 2, 1), False, -1), (0, (0, 2, 3), (5, 2, 1), False, 1),
     (3, (0, 2, 3), (5, 2, 1), True, -1), (2, (0, 2, 3), (5, 2, 1), True, 1)),
    ((1, (0, 1, 3), (4, 2, 0), False, 1), (0, (0, 1, 3), (4, 2, 0), False, -1),
     (3, (0, 1, 3), (4, 2, 0), True, 1), (2, (0, 1, 3), (4, 2, 0), True, -1)),
    ((1, (0, 1, 2), (3, 1, 0), False, -1), (0, (0, 1, 2), (3, 1, 0), False, 1),
     (3, (0, 1, 2), (3, 1, 0), True, -1), (2, (0, 1, 2), (3, 1, 0), True, 1)),
)


def adjugate_4x4(a: Sequence[Sequence[Any]], mul: Binary, sub: Binary, add: Binary,
                 neg: Callable[[Any], Any]) -> tuple[list[list[Any]], Any]:
    """Adjugate and determinant of 4x4 matrices given element-wise.

    Args:
        a: ``a[i][j]``, the 16 elements (tensors of a common shape ``(...)``, or ONNX graph
            values).
        mul, sub, add, neg: element-wise ``x * y``, ``x - y``, ``x + y``, ``-x``.

    Returns:
        ``(adj, det)`` with ``inverse[i][j] = adj[i][j] / det``.
    """
    top = [sub(mul(a[0][i], a[1][j]), mul(a[1][i], a[0][j])) for i, j in _PAIRS]
    bottom = [sub(mul(a[2][i], a[3][j]), mul(a[3][i], a[2][j])) for i, j in _PAIRS]
    adj = []
    for row_spec in _ADJUGATE:
        row = []
        for r, (x, y, z), (p, q, k), use_top, sign in row_spec:
            minors = top if use_top else bottom
            value = add(sub(mul(a[r][x], minors[p]), mul(a[r][y], minors[q])), mul(a[r][z], minors[k]))
            row.append(value if sign > 0 else neg(value))
        adj.append(row)
    det = add(add(sub(mul(top[0], bottom[5]), mul(top[1], bottom[4])),
                  add(mul(top[2], bottom[3]), mul(top[3], bottom[2]))),
              sub(mul(top[5], bottom[0]), mul(top[4], bottom[1])))
    return adj, det


def inverse_4x4(matrix: torch.Tensor) -> torch.Tensor:
    """``(..., 4, 4)`` inverse through :func:`adjugate_4x4` (the exported arithmetic)."""
    a = [[matrix[..., i, j] for j in range(4)] for i in range(4)]
    adj, det = adjugate_4x4(a, torch.mul, torch.sub, torch.add, torch.neg)
    return torch.stack([torch.stack(row, dim=-1) for row in adj], dim=-2) / det[..., None, None]


def _linalg_inv_symbolic(g: Any, matrix: Any) -> Any:
    """TorchScript-exporter translation of ``aten::linalg_inv`` for ``(..., 4, 4)`` inputs."""
    def const(value: int) -> Any:
        return g.op("Constant", value_t=torch.tensor(value, dtype=torch.int64))

    rows = [g.op("Gather", matrix, const(i), axis_i=-2) for i in range(4)]
    a = [[g.op("Gather", row, const(j), axis_i=-1) for j in range(4)] for row in rows]
    adj, det = adjugate_4x4(
        a, lambda x, y: g.op("Mul", x, y), lambda x, y: g.op("Sub", x, y),
        lambda x, y: g.op("Add", x, y), lambda x: g.op("Neg", x))
    last = g.op("Constant", value_t=torch.tensor([-1], dtype=torch.int64))
    flat = g.op("Concat", *[g.op("Unsqueeze", value, last) for row in adj for value in row], axis_i=-1)
    inverse = g.op("Div", flat, g.op("Unsqueeze", det, last))
    return g.op("Reshape", inverse, g.op("Shape", matrix))


@contextlib.contextmanager
def standard_op_symbolics(opset: int) -> Iterator[None]:
    """Within the block, ``torch.onnx.export(..., dynamo=False)`` writes ``linalg_inv`` of
    4x4 matrices with standard ONNX operators; the registration is removed on exit."""
    torch.onnx.register_custom_op_symbolic(_INVERSE_OP, _linalg_inv_symbolic, opset)
    try:
        yield
    finally:
        torch.onnx.unregister_custom_op_symbolic(_INVERSE_OP, opset)
