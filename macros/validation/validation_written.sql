{#- The model columns that keep as written the cells a model column comes from: the
    as_written (the part after the dot) of the column map's rows that feed it in the layout,
    in source column order, as text[]; null when there are none or no map. Looked up once
    per (layout, model column), it gives each of many rows its cells (validation_cells)
    without a lookup per row. -#}
{% macro validation_written(column_map, layout_sql, model_column_sql) -%}
    {%- if column_map is none -%}
        {{ return('null::text[]') }}
    {%- endif -%}
(
    select array_agg(split_part(mapped.as_written, '.', 2) order by mapped.source_column)
    {{ validation_mapped(column_map, layout_sql, model_column_sql, true) }}
)
{%- endmacro %}
