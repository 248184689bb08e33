{#- The layout (seeds/raw_layouts.csv) of the raw table a row comes from. -#}
{% macro validation_layout(raw_tables, file_sql, sheet_sql) -%}
    {%- if raw_tables is none -%}
        null::text
    {%- else -%}
        (
            select tables.layout
            from {{ raw_tables }} as tables
            where tables.source_file = {{ file_sql }} and tables.source_sheet = {{ sheet_sql }}
            limit 1
        )
    {%- endif -%}
{%- endmacro %}
