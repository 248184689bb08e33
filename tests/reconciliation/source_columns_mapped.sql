{{
    config(severity='error', meta={
        "rule_id": "R05",
        "rows_checked_in": ["raw_tables"]
    })
}}
-- Every column of every raw table of a migrated layout is in the column map
-- (seeds/source_columns.csv, docs/column-map.md): migrated to named mart columns, or
-- declared not migrated with a reason. Returns one row per column the map does not name for
-- the table's layout (validation.raw_tables, macro raw_layout_matched), at the table's header
-- row: an export that gains a column stops here instead of the column vanishing in staging.
-- A table's columns are those raw._columns maps back to a header, and any other column of
-- the table but the loader's lineage (loaders/naming.py RESERVED_COLUMNS).
{%- set columns = source('loader', 'columns') %}

with

migrated_tables as (

    select
        source_file,
        source_sheet,
        header_row,
        table_name,
        layout
    from {{ ref('raw_tables') }}
    where role = 'migrated'

),

table_columns as (

    select
        table_name,
        column_name
    from {{ columns }}

    union

    select
        table_name::text as table_name,
        column_name::text as column_name
    from information_schema.columns
    where
        table_schema = '{{ columns.schema }}'
        and column_name not in (
            '_load_id',
            '_source_file',
            '_source_sha256',
            '_source_sheet',
            '_source_row',
            '_loaded_at'
        )

),

headers as (

    select
        table_name,
        column_name,
        original_header
    from {{ columns }}

),

column_map as (

    select
        layout,
        source_column
    from {{ ref('source_columns') }}

),

unmapped as (

    -- in the order of validation.exceptions' columns
    select  -- noqa: ST06
        migrated_tables.source_file,
        migrated_tables.source_sheet,
        coalesce(migrated_tables.header_row, 0) as source_row,  -- 0: a SQLite table
        migrated_tables.table_name,
        migrated_tables.layout,
        table_columns.column_name as source_column,
        headers.original_header as source_header,
        -- validation.exceptions: column_name `headers` (R05's column in business_rules), and
        -- its value the header Mary sees (the raw column's name for a blank header)
        'headers' as column_name,
        coalesce(headers.original_header, table_columns.column_name) as headers
    from migrated_tables
    inner join table_columns
        on migrated_tables.table_name = table_columns.table_name
    left join headers
        on
            table_columns.table_name = headers.table_name
            and table_columns.column_name = headers.column_name
    left join column_map
        on
            migrated_tables.layout = column_map.layout
            and table_columns.column_name = column_map.source_column
    where column_map.source_column is null

)

select * from unmapped
