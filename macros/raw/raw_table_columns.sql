{#- Every column of a raw source table with its type: the loader's lineage columns (macro
    raw_lineage_columns), then the source's own (macro raw_source_columns), all text, as
    `luckygas load` stages them. -#}
{% macro raw_table_columns(source_name, table_name) -%}
    {%- set columns = raw_lineage_columns() -%}
    {%- for column in raw_source_columns(source_name, table_name) -%}
        {%- do columns.update({column: 'text'}) -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}
