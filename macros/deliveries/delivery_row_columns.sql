{#- The per-row columns int_delivery_rows_classified carries through each branch, of the
    relation `alias` when given. -#}
{% macro delivery_row_columns(alias=none) -%}
    {%- set columns = [
        'source_system', 'source_file', 'source_sheet', 'source_row', 'load_id',
        'layout', 'items_recorded', 'client_code', 'client_code_raw', 'app_client_id',
        'app_delivery_id', 'app_status', 'delivery_date', 'delivery_date_raw', 'delivery_time',
        'salesperson', 'driver_name', 'vehicle_plate', 'app_notes', 'app_returned',
        'short_name', 'address',
        'address_raw', 'items_text', 'content_hash'
    ] -%}
    {%- for column in columns %}
        {{ alias ~ '.' if alias else '' }}{{ column }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}
