{#- Every column of a raw source table with its type: the loader's lineage columns (macro
    raw_lineage_columns), then the source's own (macro raw_source_columns), all text, as
    `luckygas load` stages them. The loader's own bookkeeping tables (source `loader`,
    created by loaders/raw.py's BOOKKEEPING_DDL) have no lineage and their own types,
    listed here: a unit test can give one before any load. -#}
{% macro raw_table_columns(source_name, table_name) -%}
    {%- if source_name == 'loader' -%}
        {%- set bookkeeping = {
            'loads': {
                'load_id': 'bigint', 'started_at': 'timestamp with time zone',
                'finished_at': 'timestamp with time zone', 'db_user': 'text',
                'os_user': 'text', 'host': 'text', 'arguments': 'text[]',
                'tool_version': 'text', 'outcome': 'text', 'message': 'text'},
            'sources': {
                'load_id': 'bigint', 'source_file': 'text', 'source_path': 'text',
                'file_kind': 'text', 'file_sha256': 'text', 'file_bytes': 'bigint',
                'sheet': 'text', 'table_name': 'text', 'header_row': 'integer',
                'columns': 'integer', 'rows_read': 'bigint', 'rows_written': 'bigint',
                'seconds': 'numeric(10,3)', 'outcome': 'text', 'message': 'text',
                'recorded_at': 'timestamp with time zone'},
            'columns': {
                'table_name': 'text', 'position': 'integer', 'column_name': 'text',
                'original_header': 'text', 'source_file': 'text', 'sheet': 'text',
                'load_id': 'bigint'},
        } -%}
        {%- if table_name not in bookkeeping -%}
            {{ exceptions.raise_compiler_error(
                'macro raw_table_columns does not know source loader.' ~ table_name) }}
        {%- endif -%}
        {{ return(bookkeeping[table_name]) }}
    {%- endif -%}
    {%- set columns = raw_lineage_columns() -%}
    {%- for column in raw_source_columns(source_name, table_name) -%}
        {%- do columns.update({column: 'text'}) -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}
