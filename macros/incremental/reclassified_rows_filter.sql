{#- The rows of `alias` (a delivery staging model) an incremental build of
    int_delivery_rows_classified classifies again: those of the client-days and the rows
    `reclassify` (int_delivery_rows_to_reclassify) lists, and those of the sources new to
    it, `new_sources` (macro delivery_classification_plan). `client_code` is the row's client code (the app's,
    through its client). -#}
{% macro reclassified_rows_filter(alias, client_code, reclassify, new_sources) -%}
    ({{ client_code }}, {{ alias }}.delivery_date) in (
        select
            listed.client_code,
            listed.delivery_date
        from {{ reclassify }} as listed
        where listed.kind = 'day'
    )
    or ({{ alias }}.source_file, {{ alias }}.source_sheet, {{ alias }}.load_id) in (
        select
            new_sources.source_file,
            new_sources.source_sheet,
            new_sources.load_id
        from ({{ sources_values(new_sources) }}) as new_sources
    )
    or ({{ alias }}.source_file, {{ alias }}.source_sheet, {{ alias }}.source_row) in (
        select
            listed.source_file,
            listed.source_sheet,
            listed.source_row
        from {{ reclassify }} as listed
        where listed.kind = 'row'
    )
{%- endmacro %}
