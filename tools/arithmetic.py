"""Exact arithmetic on a parsed expression: what a calculator tool runs instead of ``eval``.

A model's text never reaches ``eval`` outside the sandbox; numbers and ``+ - * /`` with
parentheses are all a calculator needs, evaluated as exact rationals.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from fractions import Fraction

_OPS: dict[type[ast.AST], Callable[..., Fraction]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _exact(node: ast.AST) -> Fraction:
    """Evaluate an arithmetic AST exactly (rationals); anything else is refused."""
    if isinstance(node, ast.Expression):
        return _exact(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_exact(node.left), _exact(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_exact(node.operand))
    raise ValueError(f"not arithmetic: {ast.unparse(node)[:80]}")


def arithmetic(expression: str) -> str:
    """The exact value of ``expression`` (numbers, ``+ - * /``, parentheses) as text.

    Whole numbers print as integers, others with 10 significant digits.

    Raises:
        ValueError: Anything but arithmetic (names, calls, attributes, ``**``).
        SyntaxError: Not an expression.
        ZeroDivisionError: A division by zero.
    """
    value = _exact(ast.parse(expression.replace("^", "**").strip().rstrip(".="), mode="eval"))
    return str(value.numerator) if value.denominator == 1 else f"{float(value):.10g}"
