{#- The loader's lineage columns of every raw table, with their types (empty while dbt
    parses, when nothing is built). -#}
{% macro raw_lineage_columns() -%}
    {%- if not execute -%}
        {{ return({}) }}
    {%- endif -%}
    {{ return({
        '_load_id': 'bigint', '_source_file': 'text', '_source_sha256': 'text',
        '_source_sheet': 'text', '_source_row': 'integer',
        '_loaded_at': 'timestamp with time zone'}) }}
{%- endmacro %}
