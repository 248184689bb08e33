{#-
    The pre-hook of int_delivery_rows_classified on an incremental build: delete the rows it
    classifies again (macro delivery_classification_plan): every row, when `plan.all`; else
    every row of the client-days listed in `to_reclassify` (int_delivery_rows_to_reclassify,
    kind day), the rows it lists one by one (kind row: a row without client or day whose
    client is now, or no longer, a customer) and every row of an old source (a reloaded
    sheet's previous load, a source no longer loaded). The model then inserts those days
    and rows classified from all of their current rows.
-#}
{% macro delete_reclassified_rows(to_reclassify) -%}
    {%- if is_incremental() -%}
        {%- set plan = delivery_classification_plan(this) -%}
        {%- if plan.all -%}
            delete from {{ this }}
        {%- else -%}
            delete from {{ this }}
            where (client_code, delivery_date) in (
                select
                    listed.client_code,
                    listed.delivery_date
                from {{ to_reclassify }} as listed
                where listed.kind = 'day'
            );
            delete from {{ this }}
            where (source_file, source_sheet, source_row) in (
                select
                    listed.source_file,
                    listed.source_sheet,
                    listed.source_row
                from {{ to_reclassify }} as listed
                where listed.kind = 'row'
            );
            delete from {{ this }}
            where (source_file, source_sheet, load_id) in (
                {{ sources_values(plan.old) }}
            )
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
