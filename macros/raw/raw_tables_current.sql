{#-
    The raw tables as they stand now, one row per table: the file and sheet (or SQLite
    table) it holds, the rows of its latest successful load (a load that failed left the
    previous rows in place, and an unchanged file is not reloaded), and its headers as
    written (raw._columns, in sheet order; a blank header is an empty string).
    `sources` and `columns` are the loader's bookkeeping tables raw._sources and
    raw._columns.
-#}
{% macro raw_tables_current(sources, columns) -%}
    select
        loaded.table_name,
        loaded.source_file,
        loaded.sheet as source_sheet,
        loaded.file_kind,
        loaded.header_row,
        loaded.rows_written as raw_rows,
        loaded.load_id,
        coalesce(headers.headers, array[]::text[]) as headers
    from (
        select distinct on (table_name)
            table_name,
            source_file,
            sheet,
            file_kind,
            header_row,
            rows_written,
            load_id
        from {{ sources }}
        where outcome = 'loaded'
        order by table_name, load_id desc
    ) as loaded
    left join (
        select
            table_name,
            array_agg(coalesce(original_header, '') order by position) as headers
        from {{ columns }}
        group by table_name
    ) as headers
        on loaded.table_name = headers.table_name
{%- endmacro %}
