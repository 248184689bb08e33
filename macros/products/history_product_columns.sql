{#- The product columns of the history sheets (history_column of seeds/products.csv), in
    sheet order. -#}
{% macro history_product_columns() -%}
    {{ return(product_catalogue() | map(attribute='history_column') | list) }}
{%- endmacro %}
