"""Every sheet of an uploaded workbook can be loaded in the kernel the way the prompt tells the model to."""

from __future__ import annotations

import os

import pandas as pd


def test_each_sheet_loads_by_name_in_the_kernel(sandbox, workspace):
    with pd.ExcelWriter(os.path.join(workspace, "book.xlsx"), engine="openpyxl") as writer:
        pd.DataFrame({"region": ["North", "South"], "revenue": [10, 20]}).to_excel(
            writer, sheet_name="Orders", index=False
        )
        pd.DataFrame({"cost": [3, 4, 5]}).to_excel(writer, sheet_name="Costs 2024", index=False)

    result = sandbox.run(
        "import pandas as pd\n"
        "final_result = {name: len(pd.read_excel('book.xlsx', sheet_name=name)) for name in ['Orders', 'Costs 2024']}"
    )

    assert result.ok, result.error
    assert result.final_result == {"Orders": 2, "Costs 2024": 3}
