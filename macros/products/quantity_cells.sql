{#- The quantity columns of the row `relation` (an alias) as rows, to cross join: one per
    column, (source_column, quantity). The unpivot the items model and the reconciliation
    share. -#}
{% macro quantity_cells(relation, columns) -%}
lateral (
    values
    {%- for column in columns %}
        ('{{ column }}', {{ relation }}."{{ column }}"){{ ',' if not loop.last }}
    {%- endfor %}
) as cells (source_column, quantity)
{%- endmacro %}
