# A table's figures for `snakemake --report reports/report.html`: one directory of PNGs per table (univid plots),
# each PNG an entry of the report (category "Figures", one subcategory per table), captioned by workflows/report/.
localrules: plots


rule plots:
    input:
        results=f"{R}/tables/{{table}}/results.json",
        lineage=lambda w: lineage(w.table),  # the plots also read the train logs and reflection traces
    output:
        report(directory(f"{R}/tables/{{table}}/plots"), patterns=["{name}.png"], caption="../report/plots.rst",
               category="Figures", subcategory="{table}", labels={"table": "{table}", "figure": "{name}"})
    shell: "univid plots --results {input.results} --out-dir {output}"
