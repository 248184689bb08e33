{#-
    Each raw table of `tables` (macro raw_tables_current) with the layout of the catalogue
    `layouts` (seed raw_layouts) it matches, or NULL layout when it matches none. A layout
    matches when the file name matches its file_pattern (a POSIX regex, case-insensitive;
    `$delivery_history_files` stands for var('delivery_history_files')), the sheet matches
    its sheet_pattern (case-sensitive), every header of its `|`-separated headers is among
    the table's headers, and, for a layout marked only_empty, the table has no row. Empty
    patterns match everything. The match with the lowest priority wins.
-#}
{% macro raw_layout_matched(tables, layouts) -%}
    select
        tables.*,
        matched.layout,
        matched.role,
        matched.staging_model,
        matched.reason
    from {{ tables }} as tables
    left join lateral (
        select
            layouts.layout,
            layouts.role,
            layouts.staging_model,
            layouts.reason
        from {{ layouts }} as layouts
        where
            (
                coalesce(layouts.file_pattern, '') = ''
                or tables.source_file ~* replace(
                    layouts.file_pattern,
                    '$delivery_history_files',
                    '{{ var("delivery_history_files") }}'
                )
            )
            and (
                coalesce(layouts.sheet_pattern, '') = ''
                or tables.source_sheet ~ layouts.sheet_pattern
            )
            and (
                coalesce(layouts.headers, '') = ''
                or string_to_array(layouts.headers, '|') <@ tables.headers
            )
            and (not layouts.only_empty or tables.raw_rows = 0)
        order by layouts.priority
        limit 1
    ) as matched on true
{%- endmacro %}
