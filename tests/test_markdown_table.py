"""Every report's Markdown tables come from one writer (mmfusion.evaluation.markdown)."""

from mmfusion.evaluation.markdown import markdown_table, table_row


def test_a_table_is_a_header_a_rule_aligned_per_column_and_one_line_per_row():
    rows = [["covid", "0.900", 10], ["a|b", 1.5, "two\nlines"]]
    table = markdown_table(["class", "recall", "n"], rows, "lr")
    assert table.splitlines() == [
        "| class | recall | n |",
        "| --- | ---: | --- |",
        "| covid | 0.900 | 10 |",
        "| a\\|b | 1.5 | two lines |",  # a pipe does not split a cell, a newline not a row
    ]


def test_a_row_written_alone_matches_the_rows_of_a_table():
    assert markdown_table(["a", "b"], [[1, 2]]).splitlines()[-1] == table_row([1, 2])
