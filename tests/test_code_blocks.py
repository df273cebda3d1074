from redraft.code_blocks import fenced_blocks

REPLY = ("Draft:\n```python\nx = 1\n```\nIt prints:\n```\n1\n```\nFinal:\n```py\nprint(2)\n```\n"
         "and an unclosed one:\n```python\nprint(3)\n")


def test_fenced_blocks_reads_closed_blocks_in_order_tagged_or_not():
    assert fenced_blocks(REPLY) == ["x = 1\n", "1\n", "print(2)\n"]


def test_python_tag_required_skips_a_bare_block_such_as_a_pasted_output():
    assert fenced_blocks(REPLY, python_tag_required=True) == ["x = 1\n", "print(2)\n"]
    assert fenced_blocks("```PYTHON\nprint(1)\n```", python_tag_required=True) == ["print(1)\n"]


def test_no_fence_no_blocks():
    assert fenced_blocks("def f():\n    return 1\n") == []
